"""Password hashing with argon2: one hasher for user passwords and password fields."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["hash_password", "verify_password"]

_HASHER = PasswordHasher()


def hash_password(plain: str) -> str:
    """The argon2 hash of ``plain`` (salted: two calls give different hashes)."""
    return _HASHER.hash(plain)


def verify_password(stored: str | None, candidate: str) -> bool:
    """Whether ``candidate`` is the password whose hash is ``stored``."""
    if not stored:
        return False
    try:
        return _HASHER.verify(stored, candidate)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
