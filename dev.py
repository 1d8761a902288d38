#!/usr/bin/env python3
"""The two commands of the README, runnable on a fresh machine with Python 3.11+.

    python3 dev.py demo    # create (first run) and serve the demo store, print its URL
    python3 dev.py test    # lint, format check, type check and the whole test suite

Each installs what it needs by itself: a pinned ``uv`` in ``.tools/``, then the
locked workspace (``uv.lock``) in ``.venv/``. Extra arguments go to the tool:
``python3 dev.py test -k plugins`` narrows pytest, ``python3 dev.py demo --port 9000``.
``python3 dev.py bench NAME [--scale S]`` runs one benchmark of ``tests/perf``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".tools"
UV_VERSION = "0.13.9"
MIN_PYTHON = (3, 11)

#: Services the tests talk to, and how this machine starts one that has stopped.
SERVICES = {
    "PostgreSQL": (
        "127.0.0.1",
        5432,
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    ),
}


def _say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def _bin(venv_dir: Path, name: str) -> Path:
    return venv_dir / ("Scripts" if os.name == "nt" else "bin") / name


def ensure_uv() -> Path:
    """A pinned uv in .tools/ (installed from PyPI on first use)."""
    uv = _bin(TOOLS, "uv")
    if uv.exists():
        version = subprocess.run([str(uv), "--version"], capture_output=True, text=True).stdout
        if UV_VERSION in version:
            return uv
    _say(f"installing uv {UV_VERSION} into {TOOLS.relative_to(ROOT)}/")
    venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS)
    subprocess.run(
        [
            str(_bin(TOOLS, "python")),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"uv=={UV_VERSION}",
        ],
        check=True,
    )
    return uv


def sync(uv: Path) -> None:
    """Install the locked workspace (all packages, dev tools) into .venv/."""
    subprocess.run(
        [str(uv), "sync", "--frozen", "--all-packages", "--python", sys.executable, "--quiet"],
        cwd=ROOT,
        check=True,
    )


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def check_services() -> None:
    """Make sure the test services answer; with CI=true a missing one is a failure."""
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    for name, (host, port, start) in SERVICES.items():
        if _reachable(host, port):
            continue
        _say(f"{name} is not answering on {host}:{port}; trying: {start}")
        subprocess.run(start, shell=True, check=False)
        if _reachable(host, port):
            continue
        if ci:
            sys.exit(f"[dev] {name} is required on {host}:{port} (CI=true) and is not reachable")
        _say(f"{name} unavailable: its tests will be skipped (they fail when CI=true)")


def run(uv: Path, *args: str) -> int:
    """Run a command inside the synced environment; return its exit status."""
    return subprocess.run([str(uv), "run", "--frozen", "--no-sync", *args], cwd=ROOT).returncode


def cmd_test(uv: Path, extra: list[str]) -> int:
    """Lint, format check, type check, then pytest."""
    check_services()
    steps: list[tuple[str, list[str]]] = [
        ("ruff check", ["ruff", "check", "."]),
        ("ruff format --check", ["ruff", "format", "--check", "."]),
        ("mypy", ["mypy"]),
    ]
    if not extra:
        for title, command in steps:
            _say(title)
            status = run(uv, *command)
            if status:
                return status
    _say("pytest")
    # one worker per core: the suite spends much of its time waiting on the databases
    return run(uv, "pytest", *(extra or ["-q", "-n", "auto"]))


def main(argv: list[str]) -> int:
    if sys.version_info < MIN_PYTHON:
        sys.exit(
            f"Jimu needs Python {'.'.join(map(str, MIN_PYTHON))} or newer; this is {sys.version.split()[0]}"
        )
    if not argv or argv[0] not in {"demo", "test", "bench"}:
        print(__doc__)
        return 2
    command, extra = argv[0], argv[1:]
    if shutil.which("git") is None:
        _say("note: git is not installed; that is fine for running Jimu")
    uv = ensure_uv()
    sync(uv)
    if command == "demo":
        return run(uv, "jimu", "demo", *extra)
    if command == "bench":
        if not extra:
            sys.exit(
                "usage: python3 dev.py bench NAME [--scale S]  (NAME is a module of tests/perf)"
            )
        check_services()
        return run(uv, "python", "-m", f"tests.perf.{extra[0]}", *extra[1:])
    return cmd_test(uv, extra)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
