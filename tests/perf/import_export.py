"""Import speed against a plain ``executemany``, and the memory of a large export.

Run from the repository root::

    python -m tests.perf.import_export [--scale S]

``--scale 1.0`` runs the sizes the issue names: a 100,000-row CSV and a
100,000-row XLSX imported into a 15-field entity, and an export of 1,000,000
rows (``0.1``: 10,000 and 100,000). Everything runs on a throw-away SQLite
site in a temporary folder.

**Import.** The files are generated once (Chinese headers, the fields'
labels; an XLSX with typed cells: numbers, booleans, dates). Each round
imports each file into the empty ``member`` table twice, in turn:

* **jimu**: :func:`jimu.io.import_file` — header mapping, every cell parsed
  (``parse_cell``, with the shortcuts of :mod:`jimu.io.fastcells`),
  validation as for the API, duplicate and unique checks, hooks, one outbox
  event per record, all in one transaction;
* **plain**: what a person would write by hand to load the same file into
  the same table: read it with the same reader (the ``csv`` module on the
  decoded text, python-calamine for the workbook), convert each cell to the
  column's value (whole numbers, decimal text, ISO dates, UTC time stamps,
  0/1) and insert every row with one ``executemany`` in one transaction,
  through the same database driver.

The table and the outbox are emptied before each import (the outbox's
append-only trigger is dropped in this throw-away database), and the order
of the two sides alternates from round to round: five rounds at ``--scale``
0.5 and above, two below. Each figure is the median of the per-round ratios
of rows per second, jimu / plain.

**Export.** The table is filled with 1,000,000 rows (a plain insert, not
timed), then a child process exports them to CSV and, separately, to XLSX
with :func:`jimu.io.export_records`, and reports its peak resident memory
(``VmHWM``): everything the process holds, the interpreter included.
Every loop is bounded; only 127.0.0.1 (nothing) is contacted besides the
temporary files.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zoneinfo
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter

from jimu.io import ImportOptions, Source, import_file
from jimu.io.tables import ensure_tables
from jimu.meta import EntityDef, FieldDef
from jimu.site import Site, create_site
from tests.perf._bench import Report, parse_args, scaled

ROOT = Path(__file__).resolve().parents[2]
IMPORT_ROWS = 100_000
EXPORT_ROWS = 1_000_000
TARGET_RATIO = 0.5
TARGET_MB = 300
CITIES = ["上海", "北京", "杭州", "深圳", "广州", "成都"]
LEVELS = ["普通", "银卡", "金卡", "钻石"]
CHANNELS = ["门店", "天猫", "京东", "小程序"]
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

ENTITY = EntityDef(
    name="member",
    label={"en": "Member", "zh-CN": "会员"},
    fields=[
        FieldDef(name="member_no", type="text", unique=True, label={"zh-CN": "会员编号"}),
        FieldDef(name="name", type="text", required=True, label={"zh-CN": "姓名"}),
        FieldDef(name="phone", type="text", label={"zh-CN": "手机号码"}),
        FieldDef(name="email", type="email", label={"zh-CN": "邮箱"}),
        FieldDef(name="city", type="select", options={"choices": CITIES}, label={"zh-CN": "城市"}),
        FieldDef(name="level", type="select", options={"choices": LEVELS}, label={"zh-CN": "等级"}),
        FieldDef(name="channel", type="text", label={"zh-CN": "渠道"}),
        FieldDef(name="points", type="integer", label={"zh-CN": "积分"}),
        FieldDef(name="orders", type="integer", label={"zh-CN": "订单数"}),
        FieldDef(name="balance", type="decimal", label={"zh-CN": "余额"}),
        FieldDef(name="spent", type="decimal", label={"zh-CN": "累计消费"}),
        FieldDef(name="vip", type="boolean", label={"zh-CN": "是否VIP"}),
        FieldDef(name="birthday", type="date", label={"zh-CN": "生日"}),
        FieldDef(name="joined_at", type="datetime", label={"zh-CN": "入会时间"}),
        FieldDef(name="note", type="long_text", label={"zh-CN": "备注"}),
    ],
)
FIELDS = [f.name for f in ENTITY.fields]
HEADERS = [str(f.label["zh-CN"]) for f in ENTITY.fields if isinstance(f.label, dict)]


# -- the data ---------------------------------------------------------------------------------


def rows(count: int) -> list[list[Any]]:
    """``count`` members as typed cells (the same for every file and both sides)."""
    rng = random.Random(42)
    start = dt.datetime(2020, 1, 1, 9, 0)
    result = []
    for number in range(count):
        result.append(
            [
                f"M{number:08d}",
                f"会员{number}",
                f"1{rng.randint(3, 9)}{rng.randint(0, 999_999_999):09d}",
                f"user{number}@example.cn",
                rng.choice(CITIES),
                rng.choice(LEVELS),
                rng.choice(CHANNELS),
                rng.randint(0, 50_000),
                rng.randint(0, 200),
                Decimal(rng.randint(0, 1_000_000)) / 100,
                Decimal(rng.randint(0, 10_000_000)) / 100,
                rng.random() < 0.2,
                dt.date(1960, 1, 1) + dt.timedelta(days=rng.randint(0, 16_000)),
                start + dt.timedelta(minutes=rng.randint(0, 2_000_000)),
                "喜欢乌龙茶" if number % 3 == 0 else "",
            ]
        )
    return result


def csv_file(data: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for row in data:
        cells = list(row)
        cells[11] = "是" if row[11] else "否"
        cells[13] = row[13].strftime("%Y-%m-%d %H:%M:%S")
        writer.writerow(cells)
    return "\ufeff".encode() + buffer.getvalue().encode()


def xlsx_file(data: list[list[Any]], folder: Path) -> bytes:
    path = folder / "members.xlsx"
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("会员")
    day = workbook.add_format({"num_format": "yyyy-mm-dd"})
    moment = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheet.write_row(0, 0, HEADERS)
    for index, row in enumerate(data, start=1):
        for column, value in enumerate(row):
            if isinstance(value, bool):
                sheet.write_boolean(index, column, value)
            elif isinstance(value, int | Decimal):
                sheet.write_number(index, column, float(value))
            elif isinstance(value, dt.datetime):
                sheet.write_datetime(index, column, value, moment)
            elif isinstance(value, dt.date):
                sheet.write_datetime(index, column, value, day)
            elif value:
                sheet.write_string(index, column, value)
    workbook.close()
    return path.read_bytes()


# -- the plain import -------------------------------------------------------------------------


def _local(moment: dt.datetime | dt.date) -> dt.datetime:
    if not isinstance(moment, dt.datetime):  # calamine reads a time at midnight as a date
        moment = dt.datetime.combine(moment, dt.time())
    return moment.replace(tzinfo=TZ)


def _utc_text(moment: dt.datetime | dt.date) -> str:
    return _local(moment).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


def _plain_params(stamp: Any, c: Sequence[Any], typed: list[Any]) -> list[Any]:
    """A row's insert parameters: text and whole numbers as read, ``typed`` converted."""
    return [
        stamp,
        stamp,
        c[0],
        c[1],
        c[2] or None,
        c[3] or None,
        c[4],
        c[5],
        c[6],
        int(c[7]),
        int(c[8]),
        *typed,
        c[14] or None,
    ]


def plain_csv_rows(data: bytes, stamp: Any, postgres: bool) -> list[list[Any]]:
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    next(reader)
    params = []
    for c in reader:
        if postgres:
            typed = [
                Decimal(c[9]),
                Decimal(c[10]),
                c[11] == "是",
                dt.date.fromisoformat(c[12]),
                _local(dt.datetime.fromisoformat(c[13])),
            ]
        else:
            typed = [
                c[9],
                c[10],
                1 if c[11] == "是" else 0,
                c[12],
                _utc_text(dt.datetime.fromisoformat(c[13])),
            ]
        params.append(_plain_params(stamp, c, typed))
    return params


def plain_xlsx_rows(data: bytes, stamp: Any, postgres: bool) -> list[list[Any]]:
    from python_calamine import CalamineWorkbook

    sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0)
    cells = sheet.iter_rows()
    next(cells)
    params = []
    for c in cells:
        if postgres:
            typed = [Decimal(repr(c[9])), Decimal(repr(c[10])), bool(c[11]), c[12], _local(c[13])]
        else:
            typed = [
                str(Decimal(repr(c[9]))),
                str(Decimal(repr(c[10]))),
                1 if c[11] else 0,
                c[12].isoformat(),
                _utc_text(c[13]),
            ]
        params.append(_plain_params(stamp, c, typed))
    return params


async def plain_import(site: Site, data: bytes, kind: str) -> int:
    postgres = site.db.dialect == "postgres"
    now = dt.datetime.now(dt.UTC)
    stamp = now if postgres else _utc_text(now.astimezone(TZ).replace(tzinfo=None))
    read = plain_csv_rows if kind == "csv" else plain_xlsx_rows
    params = read(data, stamp, postgres)
    columns = ", ".join(['"created_at"', '"updated_at"', *(f'"{name}"' for name in FIELDS)])
    marks = ", ".join("{}" for _ in range(len(FIELDS) + 2))
    async with site.db.transaction():
        await site.db.execute_many(f"INSERT INTO member ({columns}) VALUES ({marks})", params)
    return len(params)


async def empty(site: Site) -> None:
    """Empty the member table and the outbox, so every round starts alike.

    The outbox refuses deletions (the audit log reads it); this throw-away
    database drops that trigger first.
    """
    guard = "jimu_event_no_delete" + (" ON jimu_event" if site.db.dialect == "postgres" else "")
    async with site.db.transaction():
        await site.db.execute("DELETE FROM member")
        await site.db.execute(f"DROP TRIGGER IF EXISTS {guard}")
        await site.db.execute("DELETE FROM jimu_event")
        await site.db.execute("DELETE FROM jimu_import")


async def count(site: Site) -> int:
    row = await site.db.fetch_one("SELECT COUNT(*) AS n FROM member")
    return int(row["n"]) if row else 0


async def jimu_import(site: Site, data: bytes, kind: str) -> int:
    outcome = await import_file(site, "member", Source(data, f"members.{kind}"), ImportOptions())
    if outcome.status != "succeeded":
        raise RuntimeError(f"the import failed: {outcome.errors[:3]}")
    return outcome.created


async def compare(
    site: Site, files: dict[str, bytes], rounds: int, label: str
) -> dict[str, list[float]]:
    ratios: dict[str, list[float]] = {kind: [] for kind in files}
    for round_number in range(rounds):
        for kind, data in files.items():
            rates: dict[str, float] = {}
            sides = [("jimu", jimu_import), ("plain", plain_import)]
            if round_number % 2:
                sides.reverse()
            for side, run in sides:
                await empty(site)
                started = time.perf_counter()
                imported = await run(site, data, kind)
                seconds = time.perf_counter() - started
                if imported != await count(site):
                    raise RuntimeError(f"{side} {kind}: {imported} imported, table disagrees")
                rates[side] = imported / seconds
            ratios[kind].append(rates["jimu"] / rates["plain"])
            print(
                f"{label} round {round_number + 1} {kind}: jimu {rates['jimu']:,.0f} rows/s, "
                f"plain {rates['plain']:,.0f} rows/s, ratio {ratios[kind][-1]:.3f}",
                flush=True,
            )
    return ratios


# -- the export -----------------------------------------------------------------------------


async def fill(site: Site, total: int) -> None:
    await empty(site)
    stamp = _utc_text(dt.datetime.now())
    columns = ", ".join(['"created_at"', '"updated_at"', *(f'"{name}"' for name in FIELDS)])
    marks = ", ".join("{}" for _ in range(len(FIELDS) + 2))
    sample = rows(10_000)
    for start in range(0, total, 10_000):
        batch = []
        for offset, row in enumerate(sample[: min(10_000, total - start)]):
            batch.append(
                [
                    stamp,
                    stamp,
                    f"E{start + offset:08d}",
                    *row[1:9],
                    str(row[9]),
                    str(row[10]),
                    int(row[11]),
                    row[12].isoformat(),
                    _utc_text(row[13]),
                    row[14] or None,
                ]
            )
        async with site.db.transaction():
            await site.db.execute_many(f"INSERT INTO member ({columns}) VALUES ({marks})", batch)


def _peak_rss_mb() -> float:
    """This process's own peak resident memory (``VmHWM``), in MB.

    Not ``getrusage().ru_maxrss``: Linux carries that over ``execve``, so in a
    child started by ``subprocess`` it can report the parent's peak.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def export_child(folder: str, fmt: str, target: str) -> None:
    """Run in a child process: export every member, print the records and the peak memory."""
    from jimu.io import ExportOptions, export_records

    async def work() -> int:
        async with Site.load(folder) as site:
            return await export_records(site, "member", ExportOptions(format=fmt), Path(target))

    started = time.perf_counter()
    exported = asyncio.run(work())
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": exported, "seconds": seconds, "peak_mb": _peak_rss_mb()}))


def measure_export(folder: Path, fmt: str, timeout: float) -> dict[str, Any]:
    target = folder.parent / f"export.{fmt}"
    code = (
        "import sys; from tests.perf.import_export import export_child; "
        "export_child(sys.argv[1], sys.argv[2], sys.argv[3])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(folder), fmt, str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the export child failed: {result.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["bytes"] = target.stat().st_size
    target.unlink()
    return figures


# -- main --------------------------------------------------------------------------------------


async def prepare(folder: Path, database_url: str | None = None) -> Site:
    create_site(folder, name="bench", database_url=database_url)
    site = Site.load(folder)
    await site.open()
    await site.create_entity(ENTITY)
    await ensure_tables(site.db)
    return site


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_SERVER, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def postgres_database() -> str | None:
    """A fresh database on the local PostgreSQL server, or ``None`` when it does not answer."""
    name = f"jimu_bench_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError) as exc:
        print(f"PostgreSQL at {POSTGRES_SERVER} does not answer ({exc}); SQLite only", flush=True)
        return None
    return f"{POSTGRES_SERVER.rsplit('/', 1)[0]}/{name}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.split("\n\n")[0] if __doc__ else "", argv)
    import_rows = scaled(IMPORT_ROWS, args.scale, minimum=1_000)
    export_rows = scaled(EXPORT_ROWS, args.scale, minimum=10_000)
    rounds = 5 if args.scale >= 0.5 else 2
    report = Report()
    with tempfile.TemporaryDirectory(prefix="jimu-bench-io-") as temp:
        folder = Path(temp) / "site"
        data = rows(import_rows)
        files = {"csv": csv_file(data), "xlsx": xlsx_file(data, Path(temp))}
        del data
        print(
            f"import: {import_rows:,} rows x {len(FIELDS)} fields; "
            f"CSV {len(files['csv']) / 1e6:.1f} MB, XLSX {len(files['xlsx']) / 1e6:.1f} MB",
            flush=True,
        )

        async def on_sqlite() -> dict[str, list[float]]:
            site = await prepare(folder)
            try:
                ratios = await compare(site, files, rounds, "sqlite")
                print(f"export: filling {export_rows:,} rows", flush=True)
                await fill(site, export_rows)
            finally:
                await site.close()
            return ratios

        ratios = asyncio.run(on_sqlite())
        postgres_ratios = None
        url = postgres_database()
        if url is not None:

            async def on_postgres() -> dict[str, list[float]]:
                site = await prepare(Path(temp) / "pg-site", url)
                try:
                    return await compare(site, files, rounds, "postgres")
                finally:
                    await site.close()

            try:
                postgres_ratios = asyncio.run(on_postgres())
            finally:
                asyncio.run(
                    _admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
                )
        exports = {}
        for fmt in ("csv", "xlsx"):
            figures = measure_export(folder, fmt, timeout=3600)
            exports[fmt] = figures
            print(
                f"export {fmt}: {figures['rows']:,} rows in {figures['seconds']:.1f} s "
                f"({figures['rows'] / figures['seconds']:,.0f} rows/s, "
                f"{figures['bytes'] / 1e6:.0f} MB), peak memory {figures['peak_mb']:.0f} MB",
                flush=True,
            )
            if figures["rows"] != export_rows:
                raise RuntimeError(f"exported {figures['rows']} of {export_rows} rows")
    for kind in ("csv", "xlsx"):
        report.figure(
            f"import_{kind}_vs_executemany",
            statistics.median(ratios[kind]),
            "ratio",
            ">=",
            TARGET_RATIO,
        )
    if postgres_ratios is not None:
        for kind in ("csv", "xlsx"):
            report.figure(
                f"import_{kind}_vs_executemany_postgres",
                statistics.median(postgres_ratios[kind]),
                "ratio",
                ">=",
                TARGET_RATIO,
            )
    report.figure("export_1m_peak_memory", exports["csv"]["peak_mb"], "MB", "<=", TARGET_MB)
    report.figure("export_1m_xlsx_peak_memory", exports["xlsx"]["peak_mb"], "MB", "<=", TARGET_MB)
    report.print()


if __name__ == "__main__":
    main()
