"""The ``jimu`` command: sites, plugins, migrations, serving and the demo.

Every command that works on a site takes ``--site PATH`` (default: the
``JIMU_SITE`` environment variable, else the current folder). Errors are one
readable line on standard error and exit status 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

import jimu
from jimu.auth import acting_as
from jimu.errors import JimuError
from jimu.plugins import ENTRY_POINT_GROUP, available_plugins, load_plugins
from jimu.site import CONFIG_FILE, Site, create_site
from jimu.store.database import Database
from jimu_cli.common import _friendly, _load, _run, _site_option
from jimu_cli.users import ADMIN_PASSWORD_ENV, bootstrap_admin, cli_actor, role, user


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(jimu.__version__, prog_name="jimu")
def cli() -> None:
    """Jimu (积木): a plugin-based low-code framework for online stores."""


# -- sites ---------------------------------------------------------------------


@cli.group()
def site() -> None:
    """Create and inspect sites."""


@site.command("new")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--db",
    "database_url",
    help="Database URL (default: SQLite file site.sqlite in the site folder).",
)
@click.option(
    "--plugins", default="", help="Comma-separated plugins to enable, e.g. demo_store,example_vip."
)
@click.option("--timezone", default="Asia/Shanghai", show_default=True)
@click.option("--locale", default="zh-CN", show_default=True)
@click.option("--admin", default="admin", show_default=True, help="Login of the first admin.")
@_friendly
def site_new(
    path: Path, database_url: str | None, plugins: str, timezone: str, locale: str, admin: str
) -> None:
    """Create a site folder PATH with its site.toml, database and first admin.

    The admin's password is printed once, or taken from $JIMU_ADMIN_PASSWORD.
    """
    names = [name.strip() for name in plugins.split(",") if name.strip()]
    # refuse unknown plugins, missing requirements and bad URLs before writing anything
    load_plugins(names)
    Database(database_url or "sqlite:///site.sqlite", base_dir=path)
    create_site(path, database_url=database_url, plugins=names, timezone=timezone, locale=locale)
    try:
        password = _run(_open_with_admin(Site.load(path), admin))
    except BaseException:
        (path / CONFIG_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.rmdir()  # only when nothing else is in it
        raise
    click.echo(f"Created site {path.name!r} in {path.resolve()}")
    if password is not None:
        click.echo(f"Admin: {admin} / {password}   (shown once: store it, or change it with")
        click.echo(f"       jimu user passwd {admin} --site {path})")
    else:
        click.echo(f"Admin: {admin} (password from ${ADMIN_PASSWORD_ENV})")
    click.echo(f"Serve it with: jimu serve --site {path}")


async def _open_with_admin(loaded: Site, admin: str) -> str | None:
    """Open the new site (creating its tables) and its first admin; the password if made."""
    async with loaded:
        with acting_as(cli_actor()):
            return await bootstrap_admin(loaded, admin)


# -- serving -------------------------------------------------------------------


@cli.command()
@_site_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Processes to run.")
def serve(site_path: Path, host: str, port: int, workers: int) -> None:
    """Serve a site over HTTP (uvicorn)."""
    _serve(site_path, host, port, workers)


def _serve(site_path: Path, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    from jimu.automation.celery_app import EmbeddedWorker

    loaded = _load(site_path)  # fail early with a readable message
    os.environ["JIMU_SITE"] = str(site_path.resolve())
    click.echo(f"Jimu site {loaded.config.name!r} at http://{host}:{port}/")
    click.echo(f"  API:     http://{host}:{port}/api/v1/meta/entities")
    click.echo(f"  OpenAPI: http://{host}:{port}/schema")
    embedded = None
    if loaded.config.broker_url.startswith("filesystem://"):
        # embedded mode: automations run in this process, their queue is a folder of the site
        embedded = EmbeddedWorker(loaded.folder, loaded.config.broker_url)
        embedded.start()
        click.echo("  Automations: embedded worker (queue in .jimu/queue)")
    else:
        click.echo(f"  Automations: run `jimu worker` and `jimu beat` ({loaded.config.broker_url})")
    sys.stdout.flush()
    try:
        uvicorn.run(
            "jimu_cli.asgi:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
        )
    finally:
        if embedded is not None:
            embedded.stop()


# -- automation workers --------------------------------------------------------------


@cli.command()
@_site_option
@click.option("--loglevel", default="WARNING", show_default=True)
def worker(site_path: Path, loglevel: str) -> None:
    """Run a Celery worker for the site's automations (distributed mode; start several)."""
    from jimu.automation.celery_app import make_celery, queue_name

    loaded = _load(site_path)
    app = make_celery(loaded.folder, loaded.config.broker_url)
    click.echo(f"Jimu worker for site {loaded.config.name!r} on {loaded.config.broker_url}")
    sys.stdout.flush()
    app.worker_main(
        [
            "worker",
            "--pool=solo",
            f"--loglevel={loglevel}",
            "-Q",
            queue_name(loaded.folder),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"jimu-{os.getpid()}@%h",
        ]
    )


@cli.command()
@_site_option
@click.option("--loglevel", default="WARNING", show_default=True)
def beat(site_path: Path, loglevel: str) -> None:
    """Send the site's automation tick on schedule (distributed mode; run exactly one)."""
    from jimu.automation.celery_app import make_celery

    loaded = _load(site_path)
    app = make_celery(loaded.folder, loaded.config.broker_url)
    state = loaded.folder / ".jimu"
    state.mkdir(exist_ok=True)
    click.echo(f"Jimu beat for site {loaded.config.name!r} on {loaded.config.broker_url}")
    sys.stdout.flush()
    app.Beat(loglevel=loglevel, schedule=str(state / "celerybeat-schedule")).run()


# -- plugins -------------------------------------------------------------------


@cli.group()
def plugins() -> None:
    """List, enable and disable plugins of a site."""


@plugins.command("list")
@_site_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@_friendly
def plugins_list(site_path: Path, as_json: bool) -> None:
    """Show installed plugins: name, version, enabled on the site, hooks."""
    enabled: list[str] = []
    if (site_path / CONFIG_FILE).is_file():
        enabled = _load(site_path).config.plugins
    installed = available_plugins()
    manager = load_plugins([name for name in enabled if name in installed])
    rows = []
    for plugin in manager.plugins.values():
        rows.append(
            {
                "name": plugin.name,
                "version": plugin.info.version,
                "builtin": plugin.builtin,
                "enabled": True,
                "blocked": False,
                "requires": plugin.info.requires,
                "hooks": plugin.hook_names(),
            }
        )
    for name in sorted(set(installed) - set(manager.plugins)):
        try:
            module = installed[name]()
            info = module.PLUGIN
            rows.append(
                {
                    "name": name,
                    "version": info.version,
                    "builtin": False,
                    "enabled": False,
                    "blocked": name in enabled,  # enabled on the site, kept out by an env switch
                    "requires": info.requires,
                    "hooks": [],
                }
            )
        except Exception as exc:  # an installed plugin that cannot even import
            rows.append({"name": name, "error": str(exc), "enabled": False})
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        if "error" in row:
            click.echo(f"  {row['name']:<24} cannot load: {row['error']}")
            continue
        state = (
            "built-in"
            if row["builtin"]
            else "enabled"
            if row["enabled"]
            else "blocked"
            if row.get("blocked")
            else "available"
        )
        hooks = ", ".join(str(hook) for hook in row["hooks"]) or "-"  # type: ignore[attr-defined]
        click.echo(f"  {row['name']:<24} {row['version']:<10} {state:<10} hooks: {hooks}")
    if not installed:
        click.echo(f"(no plugins installed in the {ENTRY_POINT_GROUP!r} entry-point group)")


@plugins.command("enable")
@click.argument("name")
@_site_option
def plugins_enable(name: str, site_path: Path) -> None:
    """Enable plugin NAME: create its tables, load its seed data, run its install hook."""
    loaded = _load(site_path)

    async def enable() -> None:
        async with loaded:
            await loaded.enable_plugin(name)

    _run(enable())
    click.echo(f"Enabled {name!r} on site {loaded.config.name!r}")


@plugins.command("disable")
@click.argument("name")
@_site_option
def plugins_disable(name: str, site_path: Path) -> None:
    """Disable plugin NAME; its tables and data are kept."""
    loaded = _load(site_path)

    async def disable() -> None:
        async with loaded:
            await loaded.disable_plugin(name)

    _run(disable())
    click.echo(f"Disabled {name!r} on site {loaded.config.name!r}; its data is kept")


# -- migrations ----------------------------------------------------------------


@cli.command()
@_site_option
@click.option(
    "--plan", "mode", flag_value="plan", default=True, help="List pending changes (default)."
)
@click.option("--apply", "mode", flag_value="apply", help="Apply every pending change.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def migrate(site_path: Path, mode: str, as_json: bool) -> None:
    """Review (--plan) or apply (--apply) schema changes that could lose data."""
    loaded = _load(site_path)

    async def work() -> list[dict[str, Any]]:
        async with loaded:
            if mode == "apply":
                return [change.as_dict() for change in await loaded.apply_pending()]
            return [change.as_dict() for change in (await loaded.plan()).changes]

    changes = _run(work())
    if as_json:
        click.echo(json.dumps({"mode": mode, "changes": changes}, ensure_ascii=False, indent=2))
        return
    if not changes:
        click.echo("Nothing to migrate: the database matches the metadata.")
        return
    verb = "Applied" if mode == "apply" else "Pending"
    click.echo(f"{verb} changes ({len(changes)}):")
    for change in changes:
        where = f"{change['entity']}.{change['field']}" if change["field"] else change["entity"]
        risk = (
            f" — {change['values_at_risk']} stored value(s) affected"
            if change["values_at_risk"] is not None
            else ""
        )
        click.echo(f"  {change['kind']:<14} {where}: {change['detail']}{risk}")
        for statement in change["sql"]:
            click.echo(f"      {statement}")
    if mode == "plan":
        click.echo("Nothing was changed. Apply with: jimu migrate --apply")


# -- the demo ------------------------------------------------------------------

DEMO_PLUGINS = ("demo_store", "example_vip")
#: File in the demo site folder holding its admin's login and password (local demo only).
DEMO_CREDENTIALS = "demo-admin.txt"


@cli.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-site"),
    show_default=True,
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Create the demo site and its data, then stop.")
def demo(folder: Path, host: str, port: int, no_serve: bool) -> None:
    """Create (on first run) and serve a demo store with sample data."""
    if not (folder / CONFIG_FILE).is_file():
        click.echo(f"Creating the demo site in {folder.resolve()} ...")
        try:
            create_site(folder, name="demo", plugins=DEMO_PLUGINS)
            loaded = Site.load(folder)
        except JimuError as exc:
            raise click.ClickException(exc.detail) from exc

        async def fill() -> dict[str, int]:
            async with loaded:
                with acting_as(cli_actor()):
                    password = await bootstrap_admin(loaded, "admin")
                    if password is not None:  # the demo is local: keep it to show on every start
                        credentials = folder / DEMO_CREDENTIALS
                        credentials.write_text(f"admin\n{password}\n", encoding="utf-8")
                        credentials.chmod(0o600)
                return await loaded.load_fixtures("demo")

        try:
            counts = _run(fill())
        except click.ClickException:
            (folder / CONFIG_FILE).unlink(missing_ok=True)
            raise
        for entity, count in sorted(counts.items()):
            click.echo(f"  {count:>6} {entity} records")
    credentials = folder / DEMO_CREDENTIALS
    if credentials.is_file():
        login, password = credentials.read_text(encoding="utf-8").split()[:2]
        click.echo(f"Sign in as {login} / {password}")
    if no_serve:
        click.echo(f"Demo site ready in {folder.resolve()}")
        return
    _serve(folder, host, port)


def plugin_commands(loaded: Site) -> list[click.Command]:
    """The ``jimu_cli_commands`` of the plugins enabled on ``loaded``, checked for clashes."""
    commands: list[click.Command] = []
    for command in loaded.plugins.collect("jimu_cli_commands"):
        if not isinstance(command, click.Command):
            raise click.ClickException(
                f"jimu_cli_commands returned {command!r}, not a click command"
            )
        if command.name in cli.commands:
            raise click.ClickException(
                f"a plugin's command {command.name!r} clashes with a kernel command"
            )
        commands.append(command)
    return commands


def _site_from_argv(argv: list[str]) -> Path:
    """The site a command line names (``--site PATH``), else ``$JIMU_SITE`` or ``.``."""
    for position, arg in enumerate(argv):
        if arg == "--site" and position + 1 < len(argv):
            return Path(argv[position + 1])
        if arg.startswith("--site="):
            return Path(arg.split("=", 1)[1])
    return Path(os.environ.get("JIMU_SITE", "."))


def _add_plugin_commands(argv: list[str]) -> None:
    """Add the plugin commands of the site the command line names."""
    site_path = _site_from_argv(argv)
    if not (site_path / CONFIG_FILE).is_file():
        return
    try:
        loaded = Site.load(site_path)
    except JimuError:
        return  # the site's own commands report the problem
    os.environ["JIMU_SITE"] = str(site_path.resolve())  # what the plugin's command reads
    for command in plugin_commands(loaded):
        if not any("--site" in getattr(param, "opts", ()) for param in command.params):
            # accept `jimu <plugin command> --site PATH` like the kernel's commands do
            command.params.append(
                click.Option(["--site"], expose_value=False, hidden=True, help="The site folder.")
            )
        cli.add_command(command)


cli.add_command(user)
cli.add_command(role)


def main() -> None:
    """Entry point of the ``jimu`` console script."""
    try:
        _add_plugin_commands(sys.argv[1:])
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    cli()


# -- import and export ---------------------------------------------------------


def _site_and_rest(args: tuple[str, ...], site_path: Path, names: str) -> tuple[Path, list[str]]:
    """``[SITE] A B``: the site (positional, else --site) and the two other arguments."""
    if len(args) == 3:
        return Path(args[0]), list(args[1:])
    if len(args) == 2:
        return site_path, list(args)
    raise click.UsageError(f"give [SITE] {names}")


def _import_mapping(value: str | None) -> dict[str, Any]:
    """``--mapping``: a JSON file of header -> field, or the name of a saved mapping."""
    if not value:
        return {}
    path = Path(value)
    if path.suffix.lower() == ".json" or path.is_file():
        try:
            return {"mapping": json.loads(path.read_text(encoding="utf-8-sig"))}
        except (OSError, ValueError) as exc:
            raise click.BadParameter(f"cannot read {value}: {exc}", param_hint="--mapping") from exc
    return {"mapping": value}


@cli.command("import", context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1, required=True, metavar="[SITE] ENTITY FILE")
@_site_option
@click.option(
    "--mode",
    type=click.Choice(["insert", "update", "upsert"]),
    default="insert",
    show_default=True,
    help="Add new records, update existing ones found by --key, or both.",
)
@click.option("--key", help="The field that finds existing records (update, upsert); default id.")
@click.option(
    "--mapping",
    metavar="FILE|NAME",
    help="A JSON file of column header -> field (null skips a column), or a saved mapping's name.",
)
@click.option("--save-mapping", metavar="NAME", help="Save the column mapping under NAME.")
@click.option("--dry-run", is_flag=True, help="Check everything and report; write nothing.")
@click.option("--valid-rows", is_flag=True, help="Import the good rows even if some are bad.")
@click.option("--clear-blanks", is_flag=True, help="In updates, blank cells clear their field.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the error report (CSV) to this file.",
)
@click.option("--sheet", help="The sheet of a workbook to read (name or number; default: first).")
@click.option("--header-row", type=int, help="The row holding the column headers (default: found).")
@click.option("--encoding", help="The CSV file's encoding (default: detected).")
@click.option("--delimiter", help="The CSV delimiter (default: detected).")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "xlsx", "xls", "ods"]),
    help="Default: from the file name.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def import_command(
    args: tuple[str, ...],
    site_path: Path,
    mode: str,
    key: str | None,
    mapping: str | None,
    save_mapping: str | None,
    dry_run: bool,
    valid_rows: bool,
    clear_blanks: bool,
    report_path: Path | None,
    sheet: str | None,
    header_row: int | None,
    encoding: str | None,
    delimiter: str | None,
    file_format: str | None,
    as_json: bool,
) -> None:
    """Import a CSV or Excel FILE into ENTITY of a site (SITE, else --site).

    Columns are matched to fields by name or label (Chinese labels too). By
    default one bad row means nothing is imported; the errors name the row and
    column as the file shows them.
    """
    from jimu.io import ImportOptions, Source, import_file, report_csv

    site_folder, (entity, file_name) = _site_and_rest(args, site_path, "ENTITY FILE")
    path = Path(file_name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from exc
    params: dict[str, Any] = {
        "mode": mode,
        "key": key,
        "save_mapping": save_mapping,
        "dry_run": dry_run,
        "valid_rows": valid_rows,
        "clear_blanks": clear_blanks,
        "sheet": sheet,
        "header_row": header_row,
        "encoding": encoding,
        "delimiter": delimiter,
        "format": file_format,
        **_import_mapping(mapping),
    }
    loaded = _load(site_folder)
    bar: Any = None
    shown = [0]

    def progress(update: Any) -> None:
        nonlocal bar
        if not sys.stderr.isatty() or update.phase != "importing":
            return
        if bar is None:
            bar = click.progressbar(
                length=max(update.total or 0, 1), label=f"Importing {path.name}", file=sys.stderr
            )
            bar.__enter__()
        if update.total and update.total != bar.length:
            bar.length = update.total
        bar.update(update.processed - shown[0])
        shown[0] = update.processed

    async def work() -> Any:
        async with loaded:
            options = ImportOptions.from_params({k: v for k, v in params.items() if v is not None})
            return await import_file(
                loaded, entity, Source(data, path.name), options, progress=progress
            )

    try:
        outcome = _run(work())
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if report_path is not None:
        report_path.write_bytes(report_csv(outcome.errors, loaded.config.locale))
    if as_json:
        click.echo(
            json.dumps(
                outcome.summary(errors=len(outcome.errors)),
                ensure_ascii=False,
                indent=2,
                default=str,
            )
        )
    else:
        for problem in outcome.errors[:20]:
            where = problem["column"] or "-"
            if problem["field"] and problem["field"] != problem["column"]:
                where += f" ({problem['field']})"
            click.echo(f"  row {problem['row']}, {where}: {problem['reason']}", err=True)
        if len(outcome.errors) > 20:
            click.echo(f"  ... and {len(outcome.errors) - 20} more", err=True)
        if outcome.errors:
            click.echo(
                f"Error report: {report_path}"
                if report_path
                else "Add --report FILE to get every error as a CSV file.",
                err=True,
            )
    if outcome.status == "failed":
        raise click.ClickException(outcome.detail)
    if not as_json:
        prefix = "Dry run: " if dry_run else ""
        click.echo(
            f"{prefix}{outcome.detail[0].upper()}{outcome.detail[1:]} into {entity} from {path.name} ({outcome.seconds:.1f} s)"
        )


@cli.command("export")
@click.argument("args", nargs=-1, required=True, metavar="[SITE] ENTITY OUTPUT")
@_site_option
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "xlsx"]),
    help="Default: from OUTPUT's name (csv for '-', standard output).",
)
@click.option(
    "--filter", "filter_json", metavar="JSON", help="A JsonLogic rule, as for the list API."
)
@click.option("--sort", help="Comma-separated fields; -name sorts descending.")
@click.option("--fields", help="Comma-separated fields to export (default: id and every field).")
@click.option(
    "--header",
    type=click.Choice(["label", "name"]),
    default="label",
    show_default=True,
    help="Column headers: the fields' labels in the site's locale, or their names.",
)
def export_command(
    args: tuple[str, ...],
    site_path: Path,
    file_format: str | None,
    filter_json: str | None,
    sort: str | None,
    fields: str | None,
    header: str,
) -> None:
    """Export the records of ENTITY (filtered, sorted) to OUTPUT, a CSV or XLSX file ('-': stdout)."""
    from jimu.io import ExportOptions, export_records, open_export
    from jimu.store.records import SortKey

    site_folder, (entity, output) = _site_and_rest(args, site_path, "ENTITY OUTPUT")
    chosen = file_format or ("xlsx" if output.lower().endswith((".xlsx", ".xlsm")) else "csv")
    rule = None
    if filter_json:
        try:
            rule = json.loads(filter_json)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--filter") from exc
    options = ExportOptions(
        format=chosen,
        filter=rule,
        sort=[SortKey.parse(key) for key in (sort or "").split(",") if key.strip()],
        fields=[name.strip() for name in fields.split(",") if name.strip()] if fields else None,
        header=header,
    )
    loaded = _load(site_folder)

    async def work() -> int:
        async with loaded:
            export = await open_export(loaded, entity, options)
            if output == "-":
                async for piece in export.content:
                    sys.stdout.buffer.write(piece)
                sys.stdout.buffer.flush()
                return export.rows()
            return await export_records(loaded, entity, options, Path(output))

    count = _run(work())
    if output != "-":
        click.echo(f"Exported {count} {entity} records to {output}")
