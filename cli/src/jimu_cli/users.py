"""``jimu user ...`` and ``jimu role ...``: people, roles and API tokens of a site.

Passwords never go on the command line (where ``ps`` and shell history see
them): commands prompt for them, or read them from standard input
(``--password-stdin``) or from an environment variable (``--password-env``).
Every change is written to the site's audit log as the CLI's user.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import sys
import time
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from jimu.auth import Actor, RoleDef, User, acting_as
from jimu.site import Site
from jimu_cli.common import _load, _run, _site_option

__all__ = ["bootstrap_admin", "role", "user"]

T = TypeVar("T")

#: Environment variable holding the first admin's password for ``jimu site new``.
ADMIN_PASSWORD_ENV = "JIMU_ADMIN_PASSWORD"


def cli_actor() -> Actor:
    """The CLI as the audit log names it: the operating-system user who ran it."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(kind="system", name=f"cli:{who}")


def _on_site(site_path: Path, work: Callable[[Site], Awaitable[T]]) -> T:
    loaded = _load(site_path)

    async def run() -> T:
        async with loaded:
            with acting_as(cli_actor()):
                return await work(loaded)

    return _run(run())


def _password(stdin: bool, env: str | None, *, confirm: bool = True) -> str:
    if stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    elif env:
        if env not in os.environ:
            raise click.BadParameter(f"${env} is not set", param_hint="--password-env")
        value = os.environ[env]
    else:
        value = click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return value


def _user_line(u: User) -> str:
    flags = []
    if u.super_user:
        flags.append("super-user")
    if not u.active:
        flags.append("disabled")
    roles = ",".join(u.roles) or "-"
    extra = f" [{' '.join(flags)}]" if flags else ""
    return f"{u.id:>5}  {u.login:<20} {roles:<30} {u.display_name}{extra}"


async def bootstrap_admin(site: Site, login: str = "admin") -> str | None:
    """Create the site's first admin (a super-user) unless users exist; return a new password.

    The password comes from ``$JIMU_ADMIN_PASSWORD`` when set (then ``None``
    is returned: nothing to show); otherwise a random one is made and
    returned, to be shown once.
    """
    if await site.auth.users():
        return None
    given = os.environ.get(ADMIN_PASSWORD_ENV)
    password = given or secrets.token_urlsafe(12)
    await site.auth.add_user(
        login, password=password, display_name="Administrator", super_user=True
    )
    return None if given else password


# -- users ---------------------------------------------------------------------


@click.group()
def user() -> None:
    """Add, change, disable and list users; issue API tokens."""


@user.command("add")
@click.argument("login")
@_site_option
@click.option("--role", "roles", multiple=True, help="A role to hold (repeat for several).")
@click.option("--display-name", default="", help="The name shown in the UI.")
@click.option("--email", default=None)
@click.option("--phone", default=None)
@click.option("--locale", default="zh-CN", show_default=True)
@click.option(
    "--attr",
    "attributes",
    multiple=True,
    metavar="NAME=JSON",
    help="An attribute row rules read as $user.NAME, e.g. --attr 'regions=[\"华东\"]'.",
)
@click.option("--super-user", is_flag=True, help="Bypass every permission check (audited).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--password-env", metavar="VAR", help="Read the password from an environment variable."
)
@click.option("--no-password", is_flag=True, help="No password yet (cannot sign in).")
def user_add(
    login: str,
    site_path: Path,
    roles: tuple[str, ...],
    display_name: str,
    email: str | None,
    phone: str | None,
    locale: str,
    attributes: tuple[str, ...],
    super_user: bool,
    password_stdin: bool,
    password_env: str | None,
    no_password: bool,
) -> None:
    """Create user LOGIN."""
    attrs: dict[str, Any] = {}
    for item in attributes:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: write NAME=JSON", param_hint="--attr")
        try:
            attrs[name] = json.loads(raw)
        except ValueError:
            attrs[name] = raw  # a bare word is a string
    password = None if no_password else _password(password_stdin, password_env)
    created = _on_site(
        site_path,
        lambda site: site.auth.add_user(
            login,
            password=password,
            display_name=display_name,
            email=email,
            phone=phone,
            locale=locale,
            roles=roles,
            super_user=super_user,
            attributes=attrs,
        ),
    )
    click.echo(f"Created user {created.login!r} (id {created.id})")


@user.command("passwd")
@click.argument("login")
@_site_option
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--password-env", metavar="VAR", help="Read the password from an environment variable."
)
def user_passwd(
    login: str, site_path: Path, password_stdin: bool, password_env: str | None
) -> None:
    """Set LOGIN's password (their sessions end; a lockout is lifted)."""
    password = _password(password_stdin, password_env)
    _update_user(login, site_path, lambda _: {"password": password})
    click.echo(f"Password of {login!r} changed")


def _update_user(login: str, site_path: Path, changes: Callable[[User], dict[str, Any]]) -> None:
    """Apply ``changes(user)`` to the user ``login`` (audited as the CLI)."""

    async def work(site: Site) -> None:
        found = await site.auth.user_by_login(login)
        await site.auth.update_user(found.id, changes(found))

    _on_site(site_path, work)


def _set_active(login: str, site_path: Path, active: bool) -> None:
    _update_user(login, site_path, lambda _: {"active": active})


@user.command("disable")
@click.argument("login")
@_site_option
def user_disable(login: str, site_path: Path) -> None:
    """Disable LOGIN: no sign-in, sessions and tokens stop working at once."""
    _set_active(login, site_path, False)
    click.echo(f"Disabled {login!r}")


@user.command("enable")
@click.argument("login")
@_site_option
def user_enable(login: str, site_path: Path) -> None:
    """Enable LOGIN again."""
    _set_active(login, site_path, True)
    click.echo(f"Enabled {login!r}")


@user.command("list")
@_site_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def user_list(site_path: Path, as_json: bool) -> None:
    """List the site's users with their roles."""
    users = _on_site(site_path, lambda site: site.auth.users())
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(users), ensure_ascii=False, indent=2))
        return
    for u in users:
        click.echo(_user_line(u))


@user.command("token")
@click.argument("login")
@_site_option
@click.option("--name", required=True, help="What the token is for, e.g. 'ERP sync'.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    default=("*",),
    show_default=True,
    help="read, write, import, export, report, admin or * (repeat for several).",
)
@click.option(
    "--expires-days", type=click.IntRange(min=1), default=None, help="Days until it expires."
)
def user_token(
    login: str, site_path: Path, name: str, scopes: tuple[str, ...], expires_days: int | None
) -> None:
    """Issue an API token for LOGIN; it is printed once and stored only as a hash."""
    expires = time.time() + expires_days * 86400 if expires_days else None

    async def work(site: Site) -> str:
        found = await site.auth.user_by_login(login)
        secret, _ = await site.auth.create_token(found.id, name, scopes=scopes, expires_at=expires)
        return secret

    secret = _on_site(site_path, work)
    click.echo(secret)
    click.echo(
        "Store it now: it is not shown again. Send it as 'Authorization: Bearer <token>'.", err=True
    )


# -- roles ---------------------------------------------------------------------


@click.group()
def role() -> None:
    """Define roles and their permissions; give them to users."""


@role.command("list")
@_site_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def role_list(site_path: Path, as_json: bool) -> None:
    """List the site's roles."""
    roles = _on_site(site_path, lambda site: site.auth.roles())
    if as_json:
        click.echo(
            json.dumps(msgspec.to_builtins(list(roles.values())), ensure_ascii=False, indent=2)
        )
        return
    for definition in roles.values():
        entities = ", ".join(sorted(definition.grants)) or "-"
        admin = f"  admin: {', '.join(definition.admin)}" if definition.admin else ""
        click.echo(f"{definition.name:<20} {entities}{admin}")


def _read_roles(path: Path) -> list[RoleDef]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="FILE") from exc
    try:
        document: Any = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    items = document.get("role") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise click.ClickException(f"{path}: expected a list of roles ([[role]] tables in TOML)")
    roles = []
    for index, item in enumerate(items):
        try:
            roles.append(msgspec.convert(item, RoleDef))
        except msgspec.ValidationError as exc:
            name = item.get("name", "?") if isinstance(item, dict) else "?"
            raise click.ClickException(f"{path}: role {index + 1} ({name}): {exc}") from exc
    return roles


@role.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@_site_option
def role_import(file: Path, site_path: Path) -> None:
    """Create or replace the roles in FILE (TOML with [[role]] tables, or a JSON list).

    All roles are checked first; if one is wrong nothing is saved.
    """
    roles = _read_roles(file)

    async def work(site: Site) -> None:
        for definition in roles:
            try:
                site.auth.check_role(definition)
            except Exception as exc:
                raise click.ClickException(f"role {definition.name!r}: {exc}") from exc
        async with site.db.transaction():
            for definition in roles:
                await site.auth.save_role(definition)

    _on_site(site_path, work)
    click.echo(f"Saved {len(roles)} roles: {', '.join(r.name for r in roles)}")


@role.command("show")
@click.argument("name")
@_site_option
def role_show(name: str, site_path: Path) -> None:
    """Print role NAME as JSON."""
    definition = _on_site(site_path, lambda site: site.auth.role(name))
    click.echo(json.dumps(msgspec.to_builtins(definition), ensure_ascii=False, indent=2))


@role.command("delete")
@click.argument("name")
@_site_option
def role_delete(name: str, site_path: Path) -> None:
    """Delete role NAME (users lose it)."""
    _on_site(site_path, lambda site: site.auth.delete_role(name))
    click.echo(f"Deleted role {name!r}")


def _change_roles(login: str, site_path: Path, name: str, add: bool) -> None:
    _update_user(
        login,
        site_path,
        lambda found: {"roles": [r for r in found.roles if r != name] + ([name] if add else [])},
    )


@role.command("grant")
@click.argument("login")
@click.argument("name")
@_site_option
def role_grant(login: str, name: str, site_path: Path) -> None:
    """Give role NAME to user LOGIN."""
    _change_roles(login, site_path, name, True)
    click.echo(f"{login!r} now holds {name!r}")


@role.command("revoke")
@click.argument("login")
@click.argument("name")
@_site_option
def role_revoke(login: str, name: str, site_path: Path) -> None:
    """Take role NAME from user LOGIN."""
    _change_roles(login, site_path, name, False)
    click.echo(f"{login!r} no longer holds {name!r}")
