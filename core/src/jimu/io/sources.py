"""Reading the files people import: CSV in any common encoding, and spreadsheets.

A file becomes a :class:`Table`: rows of cells, each row with the number a
person sees in the file (1 is the first line of a CSV or the first row of a
sheet). CSV cells are text; spreadsheet cells keep their types (numbers,
booleans, dates), read with python-calamine, which reads the whole sheet in
Rust instead of cell by cell in Python.

Merged cells of a spreadsheet are filled in the way a person reads them: in
the header rows a merged cell's value spans every column and row it covers;
in data rows a cell merged down several rows gives its value to each of
them (a cell merged across columns stays in its first column).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jimu.errors import FieldProblem, ValidationFailed

__all__ = ["FORMATS", "Source", "Table", "column_letter", "detect_format", "open_table"]

#: File formats an import reads, by what the file name ends with.
FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".xls": "xls",
    ".ods": "ods",
}

_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_DELIMITERS = (",", "\t", ";", "|")
_SAMPLE = 256 * 1024


@dataclass
class Source:
    """A file to import: its bytes and the name it had (which tells its format)."""

    data: bytes
    filename: str = "upload"


@dataclass
class Table:
    """The rows of an imported file, with what was found out reading it."""

    format: str
    rows: Iterator[tuple[int, list[Any]]]
    #: estimated number of rows (for progress); exact for spreadsheets
    estimated_rows: int
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    #: (first row, first column, last row, last column) of merged ranges, 1-based rows,
    #: 0-based columns; spreadsheets only
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)


def column_letter(index: int) -> str:
    """``0`` -> ``A``, ``27`` -> ``AB``: a column as spreadsheets name it."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def detect_format(source: Source, given: str | None = None) -> str:
    """``csv``, ``xlsx``, ``xls`` or ``ods``: from ``given``, the file name, then the bytes."""
    if given:
        wanted = given.lower().lstrip(".")
        if wanted not in {"csv", "xlsx", "xls", "ods"}:
            raise ValidationFailed(
                FieldProblem("format", f"{given!r} is not a format (use csv, xlsx, xls or ods)")
            )
        return wanted
    name = source.filename.lower()
    for suffix, kind in FORMATS.items():
        if name.endswith(suffix):
            return kind
    if source.data.startswith(_ZIP):
        return "xlsx"
    if source.data.startswith(_OLE):
        return "xls"
    return "csv"


def open_table(
    source: Source,
    *,
    format: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
) -> Table:
    """Open ``source`` for reading; 422 naming ``file`` when it cannot be read."""
    kind = detect_format(source, format)
    if kind == "csv":
        return _csv_table(source, encoding, delimiter)
    return _sheet_table(source, kind, sheet)


# -- CSV ------------------------------------------------------------------------


def decode_text(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was in.

    UTF-8 (with or without a byte-order mark) is tried first; otherwise the
    encoding is detected with charset-normalizer, and the GB family is read
    as GB18030, which is a superset of GB2312 and GBK.
    """
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValidationFailed(
                FieldProblem("encoding", f"unknown encoding {encoding!r}")
            ) from None
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            raise ValidationFailed(
                FieldProblem("file", f"is not {encoding} text (byte {exc.start}): {exc.reason}")
            ) from None
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8-sig"), "utf-8-sig" if data.startswith(
            codecs.BOM_UTF8
        ) else "utf-8"
    except UnicodeDecodeError:
        pass
    guess = _detect(data)
    if guess is None:
        raise ValidationFailed(
            FieldProblem(
                "file",
                "cannot tell the text encoding of this file; save it as UTF-8 CSV "
                "or give the encoding (for example gb18030)",
            )
        )
    try:
        return data.decode(guess), guess
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            FieldProblem(
                "file",
                f"looks like {guess} text but byte {exc.start} is not; "
                "save it as UTF-8 CSV or give the encoding",
            )
        ) from None


_GB = frozenset({"gb2312", "gbk", "gb18030", "hz"})
_BIG5 = frozenset({"big5", "big5hkscs", "cp950"})
#: How much more "chaos" than the best guess a Chinese encoding may show and still win.
_CHAOS_MARGIN = 0.05


def _detect(data: bytes) -> str | None:
    """The encoding charset-normalizer finds, preferring Chinese ones among equals.

    Short files of Chinese text are as plausible in Korean or Japanese
    encodings; a Chinese store's file is much more likely GBK (or Big5).
    """
    from charset_normalizer import from_bytes

    # a sample cut on a line end keeps multi-byte characters whole
    sample = data[:_SAMPLE]
    if len(data) > _SAMPLE and b"\n" in sample:
        sample = sample[: sample.rindex(b"\n") + 1]
    results = list(from_bytes(sample))
    if not results:
        return None
    best = results[0]
    close = [
        codecs.lookup(match.encoding).name
        for match in results
        if match.chaos <= best.chaos + _CHAOS_MARGIN
    ]
    for family, name in ((_GB, "gb18030"), (_BIG5, "big5hkscs")):
        if any(candidate in family for candidate in close):
            return name
    return codecs.lookup(best.encoding).name


def _sniff_delimiter(text: str) -> str:
    first = next((line for line in text.splitlines()[:20] if line.strip()), "")
    counts = {candidate: first.count(candidate) for candidate in _DELIMITERS}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def _csv_table(source: Source, encoding: str | None, delimiter: str | None) -> Table:
    text, used = decode_text(source.data, encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        raise ValidationFailed(
            FieldProblem(
                "file",
                f"holds NUL characters, so it is not {used} text (a UTF-16 file without its "
                "byte-order mark?); save it as UTF-8 CSV or give the encoding",
            )
        )
    if delimiter is not None and len(delimiter) != 1:
        if delimiter.lower() in {"tab", "\\t"}:
            delimiter = "\t"
        else:
            raise ValidationFailed(FieldProblem("delimiter", "must be one character (or tab)"))
    chosen = delimiter or _sniff_delimiter(text[:_SAMPLE])
    estimated = text.count("\n") + (0 if text.endswith("\n") else 1)

    def rows() -> Iterator[tuple[int, list[Any]]]:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=chosen)
        try:
            yield from enumerate(reader, start=1)
        except csv.Error as exc:
            raise ValidationFailed(
                FieldProblem("file", f"line {reader.line_num}: not valid CSV: {exc}")
            ) from None

    return Table(
        format="csv", rows=rows(), estimated_rows=estimated, encoding=used, delimiter=chosen
    )


# -- spreadsheets -----------------------------------------------------------------


def _sheet_table(source: Source, kind: str, sheet: str | None) -> Table:
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(source.data))
    except Exception as exc:  # calamine's errors: not a workbook, encrypted, broken zip
        raise ValidationFailed(
            FieldProblem("file", f"cannot read this file as {kind.upper()}: {exc}")
        ) from None
    names = list(workbook.sheet_names)
    if not names:
        raise ValidationFailed(FieldProblem("file", "the workbook has no sheets"))
    if sheet is None:
        visible = [
            meta.name
            for meta in workbook.sheets_metadata
            if str(getattr(meta, "visible", "")).endswith("Visible")
        ]
        chosen = visible[0] if visible else names[0]
    elif sheet in names:
        chosen = sheet
    elif sheet.isdigit() and 1 <= int(sheet) <= len(names):
        chosen = names[int(sheet) - 1]
    else:
        raise ValidationFailed(
            FieldProblem("sheet", f"no sheet {sheet!r} (sheets: {', '.join(names)})")
        )
    try:
        worksheet = workbook.get_sheet_by_name(chosen)
    except Exception as exc:
        raise ValidationFailed(
            FieldProblem("file", f"cannot read sheet {chosen!r}: {exc}")
        ) from None
    merged = [
        (top + 1, left, bottom + 1, right)
        for (top, left), (bottom, right) in (worksheet.merged_cell_ranges or [])
    ]
    first_column = worksheet.start[1] if worksheet.start else 0

    def rows() -> Iterator[tuple[int, list[Any]]]:
        # calamine yields every row from the first (row numbers as people see them)
        # and the columns from the first used one
        for number, cells in enumerate(worksheet.iter_rows(), start=1):
            yield number, ([""] * first_column + list(cells)) if first_column else list(cells)

    return Table(
        format=kind,
        rows=rows(),
        estimated_rows=int(worksheet.total_height or 0),
        sheet=chosen,
        merged=merged,
    )
