"""Field types that hold a person: a user, and who created or last changed a record.

All three store the id of a row of ``jimu_user`` (see :mod:`jimu.auth`):

* ``user``: chosen by whoever writes the record (an owner, an assignee). A
  write is checked against the site's users (an unknown or disabled user is
  a 422 naming the field); input and import cells take the user's id or
  login name.
* ``created_by``: the user who created the record, set by the kernel.
* ``modified_by``: the user who last changed the record, set by the kernel
  on every write that changes it.

Writes by the system (the CLI, kernel jobs) leave ``created_by`` and
``modified_by`` empty; an automation acting as a user records that user.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, ClassVar

from jimu.auth.context import current_actor
from jimu.errors import FieldProblem, ValidationFailed
from jimu.fields import FieldType, Storage, WriteContext
from jimu.meta import FieldDef, Translatable

__all__ = ["CreatedByType", "ModifiedByType", "UserType"]


class UserType(FieldType):
    """A user of the site (by id; login names are accepted on input and import)."""

    name = "user"
    storage: ClassVar[Storage] = "integer"
    widget = "user"
    label: ClassVar[Translatable] = {"en": "User", "zh-CN": "用户"}
    resolves: ClassVar[bool] = True

    def input_type(self, field: FieldDef) -> Any:
        return int | str

    def validate(self, field: FieldDef, value: Any) -> str | None:
        if isinstance(value, int) and value < 1:
            return "must be a user id (a positive whole number) or a login name"
        if isinstance(value, str) and not value.strip():
            return "must be a user id or a login name, not blank"
        return None

    def normalize(self, field: FieldDef, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        from jimu.fields.cells import CellError as ImportCellError

        if isinstance(cell, bool):
            raise ImportCellError("is not a user id or login name")
        if isinstance(cell, int):
            return cell
        if isinstance(cell, float) and cell.is_integer():
            return int(cell)
        text = str(cell).strip()
        if not text:
            return None
        return int(text) if text.isdigit() else text

    async def resolve(
        self, field: FieldDef, items: Sequence[tuple[str, Any]], site: Any
    ) -> list[Any]:
        """Turn login names into ids and check that every user exists and is active."""
        ids = {value for _, value in items if isinstance(value, int)}
        logins = {value for _, value in items if isinstance(value, str)}
        found_ids: set[int] = set()
        by_login: dict[str, int] = {}
        if ids:
            rows = await site.db.fetch(
                f"SELECT id FROM jimu_user WHERE active = 1 AND id IN ({', '.join('{}' for _ in ids)})",
                sorted(ids),
            )
            found_ids = {int(row["id"]) for row in rows}
        if logins:
            rows = await site.db.fetch(
                "SELECT id, login FROM jimu_user WHERE active = 1 AND login IN "
                f"({', '.join('{}' for _ in logins)})",
                sorted(logins),
            )
            by_login = {row["login"]: int(row["id"]) for row in rows}
        problems = []
        resolved: list[Any] = []
        for path, value in items:
            if isinstance(value, str):
                user_id = by_login.get(value)
                if user_id is None:
                    problems.append(FieldProblem(path, f"no active user with login {value!r}"))
                resolved.append(user_id)
            else:
                if value not in found_ids:
                    problems.append(FieldProblem(path, f"no active user with id {value}"))
                resolved.append(value)
        if problems:
            raise ValidationFailed(problems)
        return resolved


class _ActorType(FieldType):
    """Base of the kernel-filled person fields: the acting user's id, or empty."""

    storage: ClassVar[Storage] = "integer"
    widget = "user"
    writable = False

    @staticmethod
    def _acting_user() -> int | None:
        actor = current_actor()
        return actor.id if actor.kind in {"user", "token", "automation"} else None


class CreatedByType(_ActorType):
    """Who created the record (set once by the kernel)."""

    name = "created_by"
    label: ClassVar[Translatable] = {"en": "Created by", "zh-CN": "创建人"}

    async def fill(self, field: FieldDef, context: WriteContext) -> Any:
        if context.before is not None:
            return context.before.get(field.name)
        return self._acting_user()


class ModifiedByType(_ActorType):
    """Who last changed the record (set by the kernel on every write that changes it)."""

    name = "modified_by"
    label: ClassVar[Translatable] = {"en": "Modified by", "zh-CN": "修改人"}

    def fills_on_update(self, field: FieldDef) -> bool:
        return True

    async def fill(self, field: FieldDef, context: WriteContext) -> Any:
        return self._acting_user()
