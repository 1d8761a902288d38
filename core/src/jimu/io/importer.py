"""Importing a CSV or spreadsheet file into an entity, row by row, all or nothing.

:func:`import_file` reads the file (:mod:`jimu.io.sources`), finds the header
row and maps its columns onto fields (:mod:`jimu.io.mapping`), turns every
cell into the field's input value with the field type's ``parse_cell``, and
writes through the record repository in one transaction, so the plugins'
hooks and the outbox see every imported record as they see an API write.

Every problem is collected with the row number a person sees in the file,
the column, the value and the reason. By default one bad row means nothing is
written; ``valid_rows`` writes the good rows and reports the others; a dry run
does the whole import, hooks and database checks included, then rolls it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import itertools
import operator
import sqlite3
import time
import zoneinfo
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from jimu.errors import Conflict, FieldProblem, Forbidden, JimuError, NotFound, ValidationFailed
from jimu.fields import FieldType
from jimu.fields.cells import CellError
from jimu.io.access import importable_fields
from jimu.io.fastcells import fast_column_parser, fast_parser
from jimu.io.mapping import Column, MappingStore, candidates, match_columns, normalise, score
from jimu.io.sources import Source, Table, column_letter, open_table
from jimu.io.tables import ensure_tables, now_param, read_json, read_time
from jimu.site import Site
from jimu.store.records import EntityRuntime, PreparedCreates

__all__ = [
    "CHUNK_ROWS",
    "ImportOptions",
    "ImportOutcome",
    "ImportStore",
    "Progress",
    "import_file",
]

#: Rows validated and written together.
CHUNK_ROWS = 1000
#: Rows at the top of a file searched for the header row.
HEADER_SEARCH_ROWS = 20
#: Problems returned with an import's summary; the report has all of them.
SUMMARY_ERRORS = 100

MODES = ("insert", "update", "upsert")
_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n", ""}


class _Rollback(Exception):
    """Raised inside the import's transaction to undo it (dry run, or refused rows)."""


@dataclass
class Progress:
    """How far an import is: its phase and the rows done out of an estimate."""

    phase: str = "reading"
    processed: int = 0
    total: int | None = None


ProgressCallback = Callable[[Progress], Awaitable[None] | None]


@dataclass
class ImportOptions:
    """What an import should do; the same options for the API, the CLI and jobs."""

    mode: str = "insert"
    key: str | None = None
    mapping: dict[str, str | None] | None = None
    mapping_name: str | None = None
    save_mapping: str | None = None
    dry_run: bool = False
    valid_rows: bool = False
    clear_blanks: bool = False
    format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    header_row: int | None = None

    #: option names as the API and the CLI spell them
    NAMES = (
        "mode",
        "key",
        "mapping",
        "save_mapping",
        "dry_run",
        "valid_rows",
        "clear_blanks",
        "format",
        "encoding",
        "delimiter",
        "sheet",
        "header_row",
    )

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, ignore: Sequence[str] = ()) -> ImportOptions:
        """Options from text parameters (query string or form); 422 naming a bad one.

        ``mapping`` is a JSON object (header -> field) or the name of a saved mapping.
        """
        from jimu.io.mapping import parse_mapping

        unknown = sorted(set(params) - set(cls.NAMES) - set(ignore))
        if unknown:
            raise ValidationFailed(
                FieldProblem(
                    unknown[0], f"unknown import option (known: {', '.join(sorted(cls.NAMES))})"
                )
            )
        options = cls()
        for name in ("mode", "key", "save_mapping", "format", "encoding", "delimiter", "sheet"):
            value = params.get(name)
            if value not in (None, ""):
                setattr(options, name, str(value))
        for name in ("dry_run", "valid_rows", "clear_blanks"):
            value = params.get(name)
            if value is not None:
                setattr(options, name, _flag(name, value))
        raw_mapping = params.get("mapping")
        if isinstance(raw_mapping, dict):
            options.mapping = parse_mapping(raw_mapping)
        elif raw_mapping not in (None, ""):
            text = str(raw_mapping).strip()
            if text.startswith("{"):
                options.mapping = parse_mapping(text)
            else:
                options.mapping_name = text
        header = params.get("header_row")
        if header not in (None, ""):
            try:
                options.header_row = int(str(header))
            except ValueError:
                raise ValidationFailed(
                    FieldProblem("header_row", f"{header!r} is not a row number")
                ) from None
            if options.header_row < 1:
                raise ValidationFailed(FieldProblem("header_row", "rows are numbered from 1"))
        if options.mode not in MODES:
            raise ValidationFailed(
                FieldProblem("mode", f"{options.mode!r} is not one of {', '.join(MODES)}")
            )
        return options


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValidationFailed(FieldProblem(name, f"{value!r} is not true or false"))


@dataclass
class ImportOutcome:
    """What an import did (or, in a dry run, would do), with every problem found."""

    entity: str
    file: str
    options: ImportOptions
    format: str = ""
    encoding: str | None = None
    sheet: str | None = None
    header_row: int = 0
    key: str | None = None
    status: str = "running"
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    blank: int = 0
    columns: list[Column] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    id: int | None = None
    job_id: int | None = None
    seconds: float = 0.0
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    finished_at: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        """Whether the rows were (or in a dry run would be) written."""
        return self.status in {"succeeded", "partial"}

    @property
    def detail(self) -> str:
        """One line for a person."""
        would = "would be " if self.options.dry_run else ""
        done = (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"
            if self.options.mode != "insert"
            else f"{self.created} created"
        )
        if self.status == "failed":
            rows = "1 row has" if self.failed == 1 else f"{self.failed} rows have"
            return (
                f"{rows} errors; nothing {would or 'was '}imported "
                "(fix them, or import the valid rows only)"
            )
        if self.status == "partial":
            return (
                f"{self.rows - self.failed} of {_rows(self.rows)} {would}imported ({done}); "
                f"{_rows(self.failed)} with errors skipped"
            )
        return f"{_rows(self.rows)} {would}imported ({done})"

    def summary(self, *, errors: int = SUMMARY_ERRORS) -> dict[str, Any]:
        """The outcome as JSON data, with the first ``errors`` problems."""
        data: dict[str, Any] = {
            "id": self.id,
            "entity": self.entity,
            "file": self.file,
            "format": self.format,
            "encoding": self.encoding,
            "sheet": self.sheet,
            "header_row": self.header_row,
            "mode": self.options.mode,
            "key": self.key,
            "dry_run": self.options.dry_run,
            "valid_rows": self.options.valid_rows,
            "status": self.status,
            "detail": self.detail,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "blank_rows": self.blank,
            "columns": [column.as_dict() for column in self.columns],
            "ignored_columns": [c.title for c in self.columns if c.field is None and c.header],
            "errors": self.errors[:errors],
            "errors_total": len(self.errors),
            "job_id": self.job_id,
            "seconds": round(self.seconds, 3),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if self.id is not None:
            data["report_url"] = f"/api/v1/imports/{self.id}/report"
        return data


def _rows(count: int) -> str:
    return "1 row" if count == 1 else f"{count} rows"


# -- the plan of an import: which cells go where --------------------------------------


@dataclass
class _Target:
    """A field filled from one or more columns (a header merged over several)."""

    name: str
    columns: list[Column]
    parse: Callable[[Any], Any]
    title: str
    #: ``parse`` over a whole column of a chunk (raises on a cell it cannot parse)
    parse_column: Callable[[Sequence[Any]], list[Any]]


def _target(
    field_type: FieldType, rt: EntityRuntime, name: str, columns: list[Column], tz: dt.tzinfo
) -> _Target:
    """The field type's ``parse_cell`` for one field (with the kernel's shortcuts when it can)."""
    parse_cell = functools.partial(field_type.parse_cell, rt.fields[name], timezone=tz)
    if type(field_type).parse_cell is FieldType.parse_cell:
        storage = rt.storage[name]
        return _Target(
            name,
            columns,
            fast_parser(storage, parse_cell, tz),
            columns[0].title,
            fast_column_parser(storage, parse_cell, tz),
        )
    return _Target(
        name,
        columns,
        parse_cell,
        columns[0].title,
        lambda cells: [parse_cell(cell) for cell in cells],
    )


def _display(cell: Any) -> str:
    """A cell as a person sees it in the report."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, dt.datetime):
        return cell.isoformat(sep=" ")
    if isinstance(cell, dt.date):
        return cell.isoformat()
    return str(cell)


def _blank(cell: Any) -> bool:
    return cell is None or cell == "" or (isinstance(cell, str) and not cell.strip())


def _blank_row(cells: list[Any]) -> bool:
    """Whether every cell of a row is blank (usually decided by the first cell)."""
    for cell in cells:
        if type(cell) is str:
            if cell and not cell.isspace():
                return False
        elif cell is not None:  # a number, a date, a yes/no: something
            return False
    return True


class _Merges:
    """Fills merged cells of a sheet as rows stream by (see :mod:`jimu.io.sources`)."""

    def __init__(self, ranges: Sequence[tuple[int, int, int, int]]) -> None:
        self.starting: dict[int, list[tuple[int, int, int, int]]] = {}
        for merged in ranges:
            self.starting.setdefault(merged[0], []).append(merged)
        self.active: list[tuple[tuple[int, int, int, int], Any]] = []

    def fill(self, number: int, cells: list[Any], *, span: bool) -> list[Any]:
        if not self.starting and not self.active:
            return cells
        self.active = [(m, v) for m, v in self.active if m[2] >= number]
        for merged in self.starting.pop(number, ()):
            left = merged[1]
            value = cells[left] if left < len(cells) else None
            self.active.append((merged, value))
        for (top, left, _bottom, right), value in self.active:
            if _blank(value):
                continue
            last = right if span else left
            if not span and number == top:
                continue
            if len(cells) <= last:
                cells = cells + [""] * (last + 1 - len(cells))
            for index in range(left, last + 1):
                if _blank(cells[index]):
                    cells[index] = value
        return cells


@dataclass
class _Header:
    number: int
    cells: list[Any]
    rows: Iterator[tuple[int, list[Any]]]


def _find_header(table: Table, known: Mapping[str, tuple[str, str]], wanted: int | None) -> _Header:
    """The header row (given, or the best-matching of the first non-blank rows) and the rest."""
    peeked: list[tuple[int, list[Any]]] = []
    filler = _Merges(table.merged)
    best: tuple[int, int, list[Any]] | None = None  # (score, number, cells)
    non_blank = 0
    for number, cells in table.rows:
        peeked.append((number, list(cells)))
        spanned = filler.fill(number, list(cells), span=True)
        if wanted is not None:
            if number == wanted:
                best = (score(spanned, known), number, spanned)
                break
            continue
        if all(_blank(cell) for cell in spanned):
            if number > 10 * HEADER_SEARCH_ROWS:
                break
            continue
        non_blank += 1
        points = score(spanned, known)
        if best is None or points > best[0]:
            best = (points, number, spanned)
        if non_blank >= HEADER_SEARCH_ROWS:
            break
    if best is None:
        if wanted is not None:
            raise ValidationFailed(FieldProblem("header_row", f"the file has no row {wanted}"))
        raise ValidationFailed(FieldProblem("file", "is empty: no header row"))
    _, number, cells = best
    # the rows below the header: the rest of those looked at, then the table's (which
    # go on in order, so they need no test)
    rest = itertools.chain([pair for pair in peeked if pair[0] > number], table.rows)
    return _Header(number=number, cells=cells, rows=rest)


class _Plan:
    """The mapped columns of one import, checked against the entity and the mode."""

    def __init__(
        self,
        site: Site,
        rt: EntityRuntime,
        columns: list[Column],
        options: ImportOptions,
        writable: Sequence[str],
    ) -> None:
        self.rt = rt
        self.options = options
        tz = zoneinfo.ZoneInfo(site.config.timezone)
        if options.mode == "insert":
            for column in columns:
                if column.field == "id":  # ids are the database's; an id column is left out
                    column.field, column.via = None, None
        by_field: dict[str, list[Column]] = {}
        for column in columns:
            if column.field is not None:
                by_field.setdefault(column.field, []).append(column)
        for name, group in by_field.items():
            headers = {normalise(column.header) for column in group}
            if len(group) > 1 and len(headers) > 1:
                listed = " and ".join(f"{column_letter(c.index)} ({c.header})" for c in group)
                raise ValidationFailed(
                    FieldProblem(
                        "mapping",
                        f"columns {listed} both go into field {name!r}; "
                        "map one of them to another field or to null",
                    )
                )
        if not by_field:
            shown = ", ".join(f"{column_letter(c.index)} {c.header!r}" for c in columns if c.header)
            raise ValidationFailed(
                FieldProblem(
                    "mapping",
                    f"no column matches a field of {rt.name} by name or label "
                    f"(columns: {shown or 'none'}); give a mapping",
                )
            )
        key = options.key
        if options.mode != "insert":
            if key is None:
                if "id" not in by_field:
                    raise ValidationFailed(
                        FieldProblem(
                            "key", f"{options.mode} needs a key: the field that finds each record"
                        )
                    )
                key = "id"
            if key != "id" and key not in rt.fields:
                raise ValidationFailed(FieldProblem("key", f"{rt.name} has no field {key!r}"))
            if key not in by_field:
                raise ValidationFailed(
                    FieldProblem("key", f"no column of the file goes into the key field {key!r}")
                )
        elif key is not None:
            raise ValidationFailed(
                FieldProblem("key", "a key is for update and upsert; leave it out to insert")
            )
        self.key = key
        if options.mode != "update":
            missing = [
                name
                for name in writable
                if rt.fields[name].required
                and rt.fields[name].default is None
                and name not in by_field
            ]
            if missing:
                raise ValidationFailed(
                    FieldProblem(
                        "mapping",
                        f"no column for the required field {missing[0]!r}"
                        + (
                            f" (nor for {', '.join(map(repr, missing[1:]))})" if missing[1:] else ""
                        ),
                    )
                )
        self.targets: list[_Target] = []
        for name, group in by_field.items():
            if name == "id":
                self.targets.append(
                    _Target(
                        name,
                        group,
                        _id_cell,
                        group[0].title,
                        lambda cells: [_id_cell(cell) for cell in cells],
                    )
                )
                continue
            self.targets.append(_target(rt.types[name], rt, name, group, tz))
        self.titles = {target.name: target.title for target in self.targets}
        self.names = [target.name for target in self.targets]
        #: when every field has one column (the fast path): the cells of a row that go
        #: into fields, in the order of ``targets``, and how long a row must be for it
        self.pick: Callable[[Sequence[Any]], tuple[Any, ...]] | None = None
        self.width = 0
        if all(len(target.columns) == 1 for target in self.targets):
            indexes = [target.columns[0].index for target in self.targets]
            if len(indexes) == 1:
                only = indexes[0]
                self.pick = lambda cells: (cells[only],)
            else:
                self.pick = operator.itemgetter(*indexes)
            self.width = 1 + max(indexes)
        self.unique = [
            name
            for name, definition in rt.fields.items()
            if name in by_field and (definition.unique or name == key)
        ]
        for index in rt.entity.indexes:
            if (
                index.unique
                and len(index.fields) == 1
                and index.fields[0] in by_field
                and index.fields[0] not in self.unique
            ):
                self.unique.append(index.fields[0])


def _id_cell(cell: Any) -> Any:
    if _blank(cell):
        return None
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    if isinstance(cell, int) and not isinstance(cell, bool):
        return cell
    text = str(cell).strip()
    if text.isdigit():
        return int(text)
    raise CellError(f"{cell!r} is not a record id")


# -- running an import ---------------------------------------------------------------

_CELLS = operator.attrgetter("cells")


@functools.lru_cache(maxsize=8)
def _prefixes(count: int) -> list[str]:
    """``0.``, ``1.``...: the prefixes that name the rows of a chunk in the kernel's problems."""
    return [f"{index}." for index in range(count)]


class _Row(msgspec.Struct, gc=False):
    """One row of the file on its way in (never in a reference cycle: nothing for the
    garbage collector to scan, of which an import makes a great many)."""

    number: int
    #: a tuple: one of text and numbers only, which the collector stops tracking
    cells: Sequence[Any]
    values: dict[str, Any] = msgspec.field(default_factory=dict)
    record_id: int | None = None
    bad: bool = False


class _Chunk(msgspec.Struct):
    """What the reader hands the writer: parsed rows, and their insert prepared."""

    rows: list[_Row]
    prepared: PreparedCreates | None
    #: the rows' values a list per field, when their ``values`` are not filled in (see
    #: ``_Run.columnar``)
    columns: dict[str, list[Any]] | None = None


class _Run:
    def __init__(
        self,
        site: Site,
        plan: _Plan,
        outcome: ImportOutcome,
        progress: ProgressCallback | None,
        total: int,
    ) -> None:
        self.site = site
        self.rt = plan.rt
        self.plan = plan
        self.options = plan.options
        self.outcome = outcome
        self.progress_callback = progress
        self.progress = Progress(phase="importing", processed=0, total=total)
        self.seen: dict[str, dict[Any, int]] = {name: {} for name in plan.unique}
        self.clear = plan.options.clear_blanks and plan.options.mode != "insert"
        #: inserts only: the fields whose blank cells must be left out of a row's values
        #: (a required field, where null is another error than a missing value, and a
        #: field with a default, which a missing value gets). For every other field a
        #: blank is null either way, and keeping it saves filtering every row.
        self.drop_blank: list[str] | None = None
        if plan.options.mode == "insert":
            self.drop_blank = [
                name
                for name in plan.names
                if name == "id"
                or name in self.rt.computed
                or self.rt.fields[name].required
                or self.rt.fields[name].default is not None
            ]
        #: whether a chunk whose cells all parse goes to the repository a column at a
        #: time (inserts without computed fields or links): its rows' ``values`` are
        #: only filled in when something needs them (see ``fill``)
        self.columnar = (
            self.drop_blank is not None
            and plan.key is None
            and not self.rt.computed
            and not self.rt.links
        )
        #: the chunk being written (its rows' ``values`` filled in on demand, see ``fill``)
        self.writing: _Chunk | None = None
        #: whether parsing goes on while a chunk is written (see ``run``)
        self.overlap = site.db.dialect == "postgres"
        self.python_types: dict[str, Any] = {
            name: self.rt.python_type(name)
            for name in self.rt.fields
            if self.rt.storage[name] != "text"
        }

    # problems ------------------------------------------------------------------

    def problem(self, row: _Row, field_name: str | None, reason: str, value: Any = None) -> None:
        if not row.bad:
            row.bad = True
            self.outcome.failed += 1
        title = ""
        if field_name is not None:
            title = self.plan.titles.get(field_name, "")
            if value is None:
                value = self.cell_text(row, field_name)
        self.outcome.errors.append(
            {
                "row": row.number,
                "column": title,
                "field": field_name,
                "value": "" if value is None else _display(value),
                "reason": reason,
            }
        )

    def cell_text(self, row: _Row, field_name: str) -> str:
        for target in self.plan.targets:
            if target.name == field_name:
                parts = [_display(self.cell(row.cells, c.index)) for c in target.columns]
                return " ".join(part for part in parts if part)
        return ""

    @staticmethod
    def cell(cells: Sequence[Any], index: int) -> Any:
        return cells[index] if index < len(cells) else None

    # the loop --------------------------------------------------------------------
    #
    # This task reads and parses rows; a writer task checks and writes them a chunk
    # at a time. On PostgreSQL, parsing goes on while the writer waits for the
    # database, so the database server's work and Python's overlap. SQLite runs in a
    # thread of this process: parsing meanwhile would keep that thread waiting for
    # the interpreter lock (up to 5 ms each time it needs it back), which costs more
    # than it saves, so there the reader waits for each chunk to be written.

    async def run(self, rows: Iterator[tuple[int, list[Any]]], table: Table) -> None:
        filler = _Merges([m for m in table.merged if m[2] > self.outcome.header_row])
        chunks: asyncio.Queue[_Chunk | None] = asyncio.Queue(maxsize=2)
        writer = asyncio.create_task(self.write_all(chunks))
        try:
            await self.report()
            chunk: list[_Row] = []
            merging = bool(filler.starting)  # merged cells below the header (sheets only)
            for count, (number, cells) in enumerate(rows, start=1):
                if merging and (filler.starting or filler.active):
                    cells = filler.fill(number, cells, span=False)
                first = cells[0] if cells else None
                # most rows start with text that is not blank: no call for them
                if not (type(first) is str and first and not first.isspace()) and _blank_row(cells):
                    self.outcome.blank += 1
                    continue
                chunk.append(_Row(number, tuple(cells)))
                if len(chunk) >= CHUNK_ROWS:
                    await asyncio.sleep(0)  # the writer may have a reply to handle first
                    await self.hand_over(chunks, chunk, writer, self.parse(chunk))
                    chunk = []
                elif count % 128 == 0:
                    await asyncio.sleep(0)  # let the writer go on while the database works
            if chunk:
                await self.hand_over(chunks, chunk, writer, self.parse(chunk))
            await self.hand_over(chunks, None, writer)
            await writer
        except BaseException:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            raise
        self.progress.total = self.progress.processed

    async def hand_over(
        self,
        chunks: asyncio.Queue[_Chunk | None],
        chunk: list[_Row] | None,
        writer: asyncio.Task[None],
        columns: dict[str, list[Any]] | None = None,
    ) -> None:
        """Give a chunk (``None``: the end) to the writer, unless the writer has failed.

        ``columns``: the chunk's values a list per field, its rows' ``values``
        not filled in (see :meth:`parse`).
        """
        item = None
        if chunk is not None:
            self.outcome.rows += len(chunk)
            failed = self.outcome.failed
            self.duplicates(chunk, columns)
            await asyncio.sleep(0)  # again between the two CPU-bound steps
            prepared = None
            if columns is not None and self.outcome.failed == failed:
                prepared = self.prepare_columns(chunk, columns)
            if prepared is None:
                if columns is not None:
                    self.fill(chunk, columns)
                    columns = None
                prepared = self.prepare(chunk)
            item = _Chunk(chunk, prepared, columns)
        putting = asyncio.ensure_future(chunks.put(item))
        await asyncio.wait({putting, writer}, return_when=asyncio.FIRST_COMPLETED)
        if not self.overlap and putting.done() and not writer.done():
            # wait until the writer is done with it: see ``overlap``
            written = asyncio.ensure_future(chunks.join())
            await asyncio.wait({written, writer}, return_when=asyncio.FIRST_COMPLETED)
            if not written.done():
                written.cancel()
        if writer.done() and not putting.done():
            putting.cancel()
        if writer.done() and writer.exception() is not None:
            raise writer.exception()  # type: ignore[misc]

    async def write_all(self, chunks: asyncio.Queue[_Chunk | None]) -> None:
        for _ in range(1 << 40):  # until the reader's end marker
            chunk = await chunks.get()
            try:
                if chunk is None:
                    return
                self.writing = chunk
                await self.write(chunk.rows, chunk.prepared)
            finally:
                self.writing = None
                chunks.task_done()

    async def report(self) -> None:
        if self.progress_callback is not None:
            result = self.progress_callback(self.progress)
            if result is not None:
                await result

    def prepare(self, rows: list[_Row]) -> PreparedCreates | None:
        """What the writer's insert of ``rows`` can do without the database, done here.

        :meth:`RecordRepository.prepare_creates` for the rows that will be
        inserted (an import without a key inserts every good row), so that on
        PostgreSQL this Python work runs while the database writes the chunk
        before. ``None`` when there is nothing to prepare, or when the rows do
        not pass: the writer's :meth:`insert` then checks them itself and
        names each problem, as without this.
        """
        if self.plan.key is not None or self.rt.computed:
            return None
        good = [row.values for row in rows if not row.bad]
        try:
            return self.site.records.prepare_creates(
                self.rt.name, good, prefixes=_prefixes(len(good))
            )
        except JimuError:
            return None

    def prepare_columns(
        self, rows: list[_Row], columns: dict[str, list[Any]]
    ) -> PreparedCreates | None:
        """:meth:`prepare` for a chunk given a column per field; ``None``: :meth:`prepare`
        decides (and names the problems).

        :meth:`RecordRepository.prepare_creates_from_columns`: a blank cell is
        a value left out, as in the rows' ``values`` (see ``drop_blank``).
        """
        try:
            return self.site.records.prepare_creates_from_columns(
                self.rt.name, columns, count=len(rows), prefixes=_prefixes(len(rows))
            )
        except JimuError:
            return None

    def fill(self, rows: list[_Row], columns: dict[str, list[Any]]) -> None:
        """Give ``rows`` their ``values`` from ``columns``: a blank left out where that
        differs from null (see ``drop_blank``), found a column at a time (``is``:
        comparing a Decimal with None is slow)."""
        names = list(columns)
        given = [
            dict(zip(names, parsed, strict=True)) for parsed in zip(*columns.values(), strict=True)
        ]
        for name in self.drop_blank or ():
            column = columns.get(name)
            if column is None:
                continue
            for index in [i for i, value in enumerate(column) if value is None]:
                del given[index][name]
        for row, row_values in zip(rows, given, strict=True):
            row.values = row_values

    def fill_unfilled(self) -> None:
        """Fill in the ``values`` of the rows being written, if they are not yet."""
        chunk = self.writing
        if chunk is not None and chunk.columns is not None:
            self.fill(chunk.rows, chunk.columns)
            chunk.columns = None

    async def write(self, rows: list[_Row], prepared: PreparedCreates | None = None) -> None:
        key = self.plan.key
        inserts: list[_Row] = []
        updates: list[_Row] = []
        if key is None:
            inserts = [row for row in rows if not row.bad]
        else:
            await self.find_records(rows, key)
            for row in rows:
                if row.bad:
                    continue
                if row.record_id is not None:
                    updates.append(row)
                elif self.options.mode == "upsert":
                    inserts.append(row)
                else:
                    self.problem(
                        row, key, f"no {self.rt.name} record with this {key}", row.values.get(key)
                    )
        inserts = await self.check_links(inserts)
        if prepared is not None and prepared.rows != len(inserts):
            prepared = None  # some rows turned out bad: they are not in the insert
        await self.insert(inserts, prepared)
        await self.update(updates)
        self.progress.processed += len(rows)
        if self.progress.total is not None and self.progress.processed > self.progress.total:
            self.progress.total = self.progress.processed
        await self.report()

    def parse(self, rows: list[_Row]) -> dict[str, list[Any]] | None:
        """Turn the cells of ``rows`` into field values, a column at a time; name bad cells.

        When every field has one column, each field's cells of the whole chunk
        go through its column parser at once. A column with a cell that parser
        refuses is parsed again a cell at a time, which names every bad cell.
        Rows too short for that, and fields filled from several columns, go a
        row at a time.

        The values go into each row's ``values``, except for a ``columnar``
        chunk whose every cell parsed: then the result holds them, a list per
        field, and the rows' ``values`` are left to :meth:`fill`.
        """
        plan = self.plan
        pick = plan.pick
        if not rows:
            return None
        if pick is None:
            for row in rows:
                self.parse_row(row)
            return None
        failed = self.outcome.failed
        width = plan.width
        full = rows
        if min(map(len, map(_CELLS, rows))) < width:
            full = [row for row in rows if len(row.cells) >= width]
            for row in rows:
                if len(row.cells) < width:
                    self.parse_row(row)
        if not full:
            return None
        columns = []
        for target, cells in zip(
            plan.targets, zip(*[pick(row.cells) for row in full], strict=True), strict=True
        ):
            try:
                values = target.parse_column(cells)
            except (CellError, ValueError, TypeError, AttributeError):
                values = []
                parse = target.parse
                for row, cell in zip(full, cells, strict=True):
                    try:
                        values.append(parse(cell))
                    except (CellError, ValueError, TypeError) as exc:
                        self.problem(row, target.name, str(exc) or type(exc).__name__, cell)
                        values.append(None)
            columns.append(values)
        names = plan.names
        if self.clear:
            for row, parsed in zip(full, zip(*columns, strict=True), strict=True):
                row.values = dict(zip(names, parsed, strict=True))
        elif self.drop_blank is not None:
            by_name = dict(zip(names, columns, strict=True))
            if self.columnar and full is rows and self.outcome.failed == failed:
                return by_name
            self.fill(full, by_name)  # inserts: a blank is left out (see drop_blank)
        else:
            for row, parsed in zip(full, zip(*columns, strict=True), strict=True):
                row.values = {
                    name: value
                    for name, value in zip(names, parsed, strict=True)
                    if value is not None
                }
        return None

    def parse_row(self, row: _Row) -> None:
        """Turn the cells of one row into field values; name every bad cell."""
        cells = row.cells
        values = row.values
        for target in self.plan.targets:
            if len(target.columns) == 1:
                index = target.columns[0].index
                cell = cells[index] if index < len(cells) else None
            else:
                parts = [
                    c
                    for column in target.columns
                    if not _blank(c := self.cell(cells, column.index))
                ]
                cell = parts[0] if len(parts) == 1 else " ".join(map(_display, parts)) or None
            try:
                value = target.parse(cell)
            except (CellError, ValueError, TypeError) as exc:
                self.problem(row, target.name, str(exc) or type(exc).__name__, cell)
                continue
            if value is None:
                if self.clear:
                    values[target.name] = None
                continue
            values[target.name] = value

    def typed(self, name: str, value: Any) -> Any:
        """A parsed cell as the Python value of its field (for comparing and querying)."""
        kind = self.python_types.get(name)
        if kind is None:  # ids, and text, which parses to itself
            return value
        try:
            return msgspec.convert(value, kind, strict=False)
        except (msgspec.ValidationError, TypeError, ValueError):
            return None

    def duplicates(self, rows: list[_Row], columns: dict[str, list[Any]] | None = None) -> None:
        """Name the rows whose unique value an earlier row of the file has.

        ``columns``: the rows' values a list per field, when their ``values``
        are not filled in.
        """
        for name, seen in self.seen.items():
            as_is = self.python_types.get(name) is None  # text and ids: compared as parsed
            values = (
                [row.values.get(name) for row in rows] if columns is None else columns.get(name)
            )
            if values is None:  # a unique field the file has no column for
                continue
            for row, value in zip(rows, values, strict=True):
                if value is None:
                    continue
                typed = value if as_is else self.typed(name, value)
                marker = typed if typed is not None else value
                try:
                    first = seen.setdefault(marker, row.number)
                except TypeError:  # an unhashable value (JSON): not a key anyone uses
                    continue
                if first != row.number:
                    self.problem(
                        row, name, f"the same {name} as row {first}: each row needs its own", value
                    )

    async def lookup(self, name: str, values: list[Any]) -> dict[Any, list[int]]:
        """Typed value -> ids of the records holding it, for ``values`` of field ``name``."""
        rt = self.rt
        found: dict[Any, list[int]] = {}
        typed = [t for v in values if (t := self.typed(name, v)) is not None]
        params = list(dict.fromkeys(rt.to_db(name, t) for t in typed))
        column = '"' + name + '"'
        for start in range(0, len(params), 500):
            part = params[start : start + 500]
            marks = ", ".join("{}" for _ in part)
            records = await self.site.db.fetch(
                f"SELECT id, {column} AS value FROM {rt.quoted} WHERE {column} IN ({marks})", part
            )
            for record in records:
                value = record["value"]
                if name != "id":
                    value = rt.types[name].from_db(rt.fields[name], value, rt.dialect)
                found.setdefault(value, []).append(int(record["id"]))
        return found

    async def find_records(self, rows: list[_Row], key: str) -> None:
        wanted = [row for row in rows if not row.bad]
        for row in wanted:
            if row.values.get(key) is None:
                self.problem(row, key, f"the key {key} is empty")
        wanted = [row for row in wanted if not row.bad]
        found = await self.lookup(key, [row.values[key] for row in wanted])
        for row in wanted:
            ids = found.get(self.typed(key, row.values[key]), [])
            if len(ids) > 1:
                self.problem(
                    row,
                    key,
                    f"{len(ids)} {self.rt.name} records have this {key}; "
                    "the key must find one record",
                )
            elif ids:
                row.record_id = ids[0]

    async def check_taken(self, rows: list[_Row]) -> list[_Row]:
        """Unique values of new rows that records already hold."""
        for name in self.plan.unique:
            if name == self.plan.key or name == "id":
                continue
            values = [row.values[name] for row in rows if row.values.get(name) is not None]
            if not values:
                continue
            taken = await self.lookup(name, values)
            if not taken:
                continue
            for row in rows:
                value = row.values.get(name)
                if value is not None and self.typed(name, value) in taken:
                    self.problem(row, name, f"another {self.rt.name} record already has this value")
        return [row for row in rows if not row.bad]

    async def check_links(self, rows: list[_Row]) -> list[_Row]:
        for name, target in self.rt.links.items():
            ids = {row.values[name] for row in rows if isinstance(row.values.get(name), int)}
            if not ids:
                continue
            existing: set[int] = set()
            listed = sorted(ids)
            for start in range(0, len(listed), 500):
                part = listed[start : start + 500]
                marks = ", ".join("{}" for _ in part)
                records = await self.site.db.fetch(
                    f'SELECT id FROM "{target}" WHERE id IN ({marks})', part
                )
                existing.update(int(record["id"]) for record in records)
            for row in rows:
                value = row.values.get(name)
                if isinstance(value, int) and value not in existing:
                    self.problem(row, name, f"no {target} record with id {value}")
        return [row for row in rows if not row.bad]

    # writing -------------------------------------------------------------------------

    def attribute(self, rows: Sequence[_Row], exc: JimuError) -> bool:
        """Record a refusal whose fields name rows (``3.phone``); whether all of them did."""
        problems = getattr(exc, "errors", None) or exc.extra.get("errors") or []
        attributed = False
        for problem in problems:
            position, _, name = str(problem.get("field", "")).partition(".")
            if not position.isdigit() or int(position) >= len(rows):
                return False
            field_name = name or None
            if field_name == "$":
                field_name = None
            self.problem(rows[int(position)], field_name, str(problem.get("reason", exc.detail)))
            attributed = True
        return attributed

    async def insert(self, rows: list[_Row], prepared: PreparedCreates | None = None) -> None:
        """Create the records of ``rows`` together; name the rows that cannot be created.

        ``prepared``: the rows as :meth:`prepare` checked them, for the first
        attempt. Unique values that records already hold are looked up only
        when the database refuses the rows (the unique index is the check
        that counts): then those rows are named and the others tried again.
        """
        if prepared is None:
            self.fill_unfilled()
        attempts = 0
        looked_up = False
        while rows:
            attempts += 1
            try:
                if prepared is not None and attempts == 1:
                    await self.site.records.create_prepared(prepared, refresh_statistics=False)
                else:
                    await self.site.records.create_many(
                        self.rt.name,
                        [row.values for row in rows]
                        if not self.rt.computed
                        else [self.new_values(row) for row in rows],
                        prefixes=_prefixes(len(rows)),
                        refresh_statistics=False,  # once, at the end of the import
                    )
            except Conflict as exc:
                self.fill_unfilled()  # what follows reads the rows' values
                if not looked_up and self.plan.unique:
                    looked_up = True
                    rows = await self.check_taken(rows)
                    continue
                if attempts < 4 and self.attribute(rows, exc):
                    rows = [row for row in rows if not row.bad]
                    continue
                await self.insert_one_by_one(rows)
                return
            except JimuError as exc:
                self.fill_unfilled()
                if attempts < 4 and self.attribute(rows, exc):
                    rows = [row for row in rows if not row.bad]
                    continue
                await self.insert_one_by_one(rows)
                return
            except _DATA_ERRORS:
                self.fill_unfilled()
                await self.insert_one_by_one(rows)
                return
            self.outcome.created += len(rows)
            return

    def new_values(self, row: _Row) -> dict[str, Any]:
        """A row's values for a new record (a computed key, such as an order number, is the kernel's)."""
        if not self.rt.computed:
            return row.values
        return {name: value for name, value in row.values.items() if name not in self.rt.computed}

    async def insert_one_by_one(self, rows: list[_Row]) -> None:
        """Each row in its own savepoint, to tell which rows the database or a hook refuses."""
        for row in rows:
            if row.bad:
                continue
            try:
                await self.site.records.create_many(
                    self.rt.name, [self.new_values(row)], prefixes=["0."], refresh_statistics=False
                )
            except JimuError as exc:
                if not self.attribute([row], exc):
                    self.problem(row, _field_of(exc), _reason_of(exc))
                continue
            except _DATA_ERRORS as exc:
                self.problem(row, None, _refused(exc))
                continue
            self.outcome.created += 1

    async def update(self, rows: list[_Row]) -> None:
        key = self.plan.key
        for row in rows:
            assert row.record_id is not None
            changes = {name: value for name, value in row.values.items() if name not in (key, "id")}
            if not changes:
                self.outcome.unchanged += 1
                continue
            try:
                before = await self.site.records.get(self.rt.name, row.record_id, ["updated_at"])
                after = await self.site.records.update(self.rt.name, row.record_id, changes)
            except NotFound:
                self.problem(row, key, f"the {self.rt.name} record was deleted meanwhile")
                continue
            except JimuError as exc:
                self.problem(row, _field_of(exc), _reason_of(exc))
                continue
            except _DATA_ERRORS as exc:
                self.problem(row, None, _refused(exc))
                continue
            if after["updated_at"] == before["updated_at"]:
                self.outcome.unchanged += 1
            else:
                self.outcome.updated += 1


#: What the databases raise for a value they cannot store (after the kernel accepted it):
#: such a row is a problem of that row, never a crash of the import.
_DATA_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.exceptions.DataError,
    sqlite3.DataError,
    sqlite3.IntegrityError,
)


def _refused(exc: Exception) -> str:
    return "the database refused this row: " + (str(exc).splitlines() or [type(exc).__name__])[0]


def _field_of(exc: JimuError) -> str | None:
    problems = getattr(exc, "errors", None) or exc.extra.get("errors") or []
    if problems:
        name = str(problems[0].get("field", ""))
        return None if name in ("", "$") else name
    return None


def _reason_of(exc: JimuError) -> str:
    problems = getattr(exc, "errors", None) or exc.extra.get("errors") or []
    if len(problems) == 1 and exc.status == 422:
        return str(problems[0].get("reason", exc.detail))
    return exc.detail


# -- the whole import ------------------------------------------------------------------


async def import_file(
    site: Site,
    entity: str,
    source: Source,
    options: ImportOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    job_id: int | None = None,
) -> ImportOutcome:
    """Import ``source`` into ``entity``; return what happened (also stored, for the report).

    A file that cannot be imported at all (unreadable, no header that names a
    field, a required field without a column, a bad option) raises
    :class:`ValidationFailed` and writes nothing. Bad rows do not raise: they
    are in the outcome, whose ``status`` is ``failed`` when nothing was written
    because of them.
    """
    options = options or ImportOptions()
    if options.mode not in MODES:
        raise ValidationFailed(
            FieldProblem("mode", f"{options.mode!r} is not one of {', '.join(MODES)}")
        )
    started = time.perf_counter()
    rt = site.runtime(entity)
    await ensure_tables(site.db)
    store = MappingStore(site.db)
    mapping: dict[str, str | None] = {}
    if options.mapping_name:
        mapping.update(await store.get(entity, options.mapping_name))
    if options.mapping:
        mapping.update(options.mapping)
    writable = importable_fields(rt)
    if options.key and options.key in rt.fields and options.key not in writable:
        writable = [*writable, options.key]  # a computed field (an order number) can find records
    outcome = ImportOutcome(entity=entity, file=source.filename, options=options, job_id=job_id)
    if progress is not None:
        first = progress(Progress(phase="reading"))
        if first is not None:
            await first
    table = open_table(
        source,
        format=options.format,
        encoding=options.encoding,
        delimiter=options.delimiter,
        sheet=options.sheet,
    )
    outcome.format, outcome.encoding, outcome.sheet = table.format, table.encoding, table.sheet
    known = candidates(rt, writable)
    for text, target in mapping.items():
        if target:
            known.setdefault(normalise(text), (target, "mapping"))
    header = _find_header(table, known, options.header_row)
    outcome.header_row = header.number
    columns = match_columns(rt, header.cells, writable=writable, mapping=mapping)
    _refuse_unwritable_columns(rt, columns, writable, mapping)
    plan = _Plan(site, rt, columns, options, writable)
    outcome.columns, outcome.key = columns, plan.key
    if options.save_mapping:
        await store.save(
            entity, options.save_mapping, {c.header: c.field for c in columns if c.header}
        )
    total = max(table.estimated_rows - header.number, 0)
    run = _Run(site, plan, outcome, progress, total)
    try:
        async with site.db.transaction():
            await run.run(header.rows, table)
            if outcome.rows == 0:
                raise ValidationFailed(
                    FieldProblem("file", f"has no rows under the header (row {header.number})")
                )
            if outcome.failed and not options.valid_rows:
                outcome.status = "failed"
                outcome.created = outcome.updated = outcome.unchanged = 0
                raise _Rollback
            outcome.status = "partial" if outcome.failed else "succeeded"
            if options.dry_run:
                raise _Rollback
            # the planner's statistics, refreshed once for the whole file (not per chunk)
            await site.records.refresh_statistics(entity, outcome.created + outcome.updated)
            await _finish(site, outcome, started)
    except _Rollback:
        await _finish(site, outcome, started)
    run.progress.phase = "done"
    await run.report()
    return outcome


def _refuse_unwritable_columns(
    rt: EntityRuntime,
    columns: Sequence[Column],
    writable: Sequence[str],
    mapping: Mapping[str, str | None],
) -> None:
    """Refuse (403) a column that names a field the importing user may not write.

    Leaving it out quietly would lose data the person meant to import; a
    mapping that sends the column to ``None`` says "leave it out" on purpose.
    """
    forbidden = [name for name in rt.fields if name not in writable and name not in rt.computed]
    if not forbidden:
        return
    names = candidates(rt, forbidden)
    skipped = {normalise(text) for text, target in mapping.items() if target is None}
    for column in columns:
        key = normalise(column.header)
        if column.field is None and key not in skipped and key in names:
            field = names[key][0]
            if field in forbidden:
                raise Forbidden(
                    f"column {column.title!r} is field {field!r} of {rt.name}, which you may "
                    "not write; remove the column or map it to nothing",
                    errors=[FieldProblem(column.title, "not writable for you")],
                )


async def _finish(site: Site, outcome: ImportOutcome, started: float) -> None:
    outcome.seconds = time.perf_counter() - started
    outcome.finished_at = dt.datetime.now(dt.UTC)
    outcome.errors.sort(key=lambda problem: problem["row"])
    outcome.id = await ImportStore(site.db).save(outcome)


class ImportStore:
    """The outcomes of imports (table ``jimu_import``), for summaries and error reports."""

    def __init__(self, db: Any) -> None:
        self.db = db

    async def save(self, outcome: ImportOutcome) -> int:
        """Store an outcome; return its id."""
        summary = outcome.summary(errors=0)
        summary.pop("errors", None)
        summary.pop("report_url", None)
        row = await self.db.fetch_one(
            "INSERT INTO jimu_import (entity, filename, status, summary, errors, job_id, "
            "started_at, finished_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}) RETURNING id",
            [
                outcome.entity,
                outcome.file,
                outcome.status,
                msgspec.json.encode(summary).decode(),
                msgspec.json.encode(outcome.errors).decode(),
                outcome.job_id,
                now_param(self.db, outcome.started_at),
                now_param(self.db, outcome.finished_at),
            ],
        )
        assert row is not None
        return int(row["id"])

    async def get(self, import_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(summary, every problem) of import ``import_id``; 404 when there is none."""
        await ensure_tables(self.db)
        row = await self.db.fetch_one(
            "SELECT id, summary, errors, started_at, finished_at FROM jimu_import WHERE id = {}",
            [import_id],
        )
        if row is None:
            raise NotFound(f"no import with id {import_id}")
        summary = read_json(row["summary"])
        errors = read_json(row["errors"])
        summary.update(
            id=int(row["id"]),
            started_at=read_time(row["started_at"]),
            finished_at=read_time(row["finished_at"]),
            report_url=f"/api/v1/imports/{int(row['id'])}/report",
            errors=errors[:SUMMARY_ERRORS],
            errors_total=len(errors),
        )
        return summary, errors
