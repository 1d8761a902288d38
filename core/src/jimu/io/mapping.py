"""Which column of an imported file goes into which field.

A header matches a field when, once normalised, it equals the field's name
or its label in any locale (``姓名``, ``Name``, ``name``). Normalising folds
full-width characters and case, and drops spaces, ``_``, ``-``, ``*``, ``:``
and a trailing "(必填)" or "(required)", so ``* 手机号码：`` matches a field
labelled ``手机号码`` and ``Joined At`` matches ``joined_at``. A name wins over
a label when both would match. An explicit mapping (header -> field name, or
``null`` to skip the column) comes first; it can be saved per entity under a
name and reused.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from jimu.errors import FieldProblem, NotFound, ValidationFailed
from jimu.io.sources import column_letter
from jimu.io.tables import ensure_tables, now_param, read_json
from jimu.meta import translate
from jimu.store.database import Database
from jimu.store.records import EntityRuntime

__all__ = [
    "Column",
    "MappingStore",
    "candidates",
    "match_columns",
    "normalise",
    "parse_mapping",
]

_DROP = re.compile(r"[\s_\-*:]+")
_MARKERS = re.compile(r"\((必填|选填|必须|可选|required|optional)\)$")
_ID_NAMES = ("id",)


def normalise(header: Any) -> str:
    """The form in which headers and field names are compared."""
    text = unicodedata.normalize("NFKC", str(header)).casefold().strip()
    text = _DROP.sub("", text)
    return _MARKERS.sub("", text)


@dataclass
class Column:
    """One column of the file: its position, its header and the field it fills (if any)."""

    index: int
    header: str
    field: str | None
    #: how it was matched: ``mapping``, ``name``, ``label``, or ``None`` (not imported)
    via: str | None = None

    @property
    def title(self) -> str:
        """The column as a person names it: its header, else its letter."""
        return self.header or column_letter(self.index)

    def as_dict(self) -> dict[str, Any]:
        """The column as shown in an import's summary."""
        return {"column": self.title, "letter": column_letter(self.index), "field": self.field}


def candidates(rt: EntityRuntime, writable: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Normalised header -> (field, how) for every field that can be imported, plus ``id``."""
    found: dict[str, tuple[str, str]] = {normalise(name): (name, "name") for name in _ID_NAMES}
    for name in writable:
        found.setdefault(normalise(name), (name, "name"))
    for name in writable:
        label = rt.fields[name].label
        texts = [label] if isinstance(label, str) else list((label or {}).values())
        for text in texts:
            if text:
                found.setdefault(normalise(text), (name, "label"))
    return found


def parse_mapping(value: Any, where: str = "mapping") -> dict[str, str | None]:
    """A mapping given as a JSON object (or its text): header -> field name or null."""
    if isinstance(value, str | bytes):
        try:
            value = msgspec.json.decode(value)
        except msgspec.DecodeError as exc:
            raise ValidationFailed(FieldProblem(where, f"is not JSON: {exc}")) from None
    if not isinstance(value, dict):
        raise ValidationFailed(
            FieldProblem(where, "must be an object of column header -> field name (or null)")
        )
    mapping: dict[str, str | None] = {}
    for header, target in value.items():
        if target is not None and not isinstance(target, str):
            raise ValidationFailed(
                FieldProblem(f"{where}.{header}", "must be a field name, or null to skip")
            )
        mapping[str(header)] = target or None
    return mapping


def match_columns(
    rt: EntityRuntime,
    headers: Sequence[Any],
    *,
    writable: Sequence[str],
    mapping: Mapping[str, str | None] | None = None,
) -> list[Column]:
    """The column of each header: explicit mapping first, then names, then labels."""
    known = candidates(rt, writable)
    explicit = {normalise(header): target for header, target in (mapping or {}).items()}
    allowed = {*writable, *_ID_NAMES}
    for header, target in (mapping or {}).items():
        if target is not None and target not in allowed:
            raise ValidationFailed(
                FieldProblem(f"mapping.{header}", f"{rt.name} has no field {target!r}")
            )
    columns = []
    for index, raw in enumerate(headers):
        header = "" if raw is None else str(raw).strip()
        key = normalise(header)
        if not key:
            columns.append(Column(index, header, None))
        elif key in explicit:
            target = explicit[key]
            columns.append(Column(index, header, target, "mapping" if target else None))
        elif key in known:
            name, how = known[key]
            columns.append(Column(index, header, name, how))
        else:
            columns.append(Column(index, header, None))
    return columns


def score(cells: Sequence[Any], known: Mapping[str, tuple[str, str]]) -> int:
    """How many distinct fields a row of cells names (to find the header row)."""
    return len({known[key][0] for cell in cells if (key := normalise(cell)) and key in known})


class MappingStore:
    """Saved mappings of one site (table ``jimu_import_mapping``), by entity and name."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, entity: str, name: str) -> dict[str, str | None]:
        """The saved mapping ``name`` of ``entity``; 404 when there is none."""
        await ensure_tables(self.db)
        row = await self.db.fetch_one(
            "SELECT columns FROM jimu_import_mapping WHERE entity = {} AND name = {}",
            [entity, name],
        )
        if row is None:
            raise NotFound(f"no saved import mapping {name!r} for {entity}")
        return parse_mapping(read_json(row["columns"]))

    async def saved(self, entity: str) -> list[dict[str, Any]]:
        """Every saved mapping of ``entity``, by name."""
        await ensure_tables(self.db)
        rows = await self.db.fetch(
            "SELECT name, columns, updated_at FROM jimu_import_mapping WHERE entity = {} "
            "ORDER BY name",
            [entity],
        )
        return [
            {
                "name": row["name"],
                "columns": read_json(row["columns"]),
                "updated_at": row["updated_at"],
            }
            for row in rows
        ]

    async def save(self, entity: str, name: str, columns: Mapping[str, str | None]) -> None:
        """Save (or replace) mapping ``name`` of ``entity``."""
        if not name.strip() or len(name) > 100:
            raise ValidationFailed(
                FieldProblem("save_mapping", "a mapping name is 1 to 100 characters")
            )
        await ensure_tables(self.db)
        payload = msgspec.json.encode(dict(columns)).decode()
        async with self.db.transaction():
            existing = await self.db.fetch_one(
                "SELECT id FROM jimu_import_mapping WHERE entity = {} AND name = {}",
                [entity, name],
            )
            if existing:
                await self.db.execute(
                    "UPDATE jimu_import_mapping SET columns = {}, updated_at = {} WHERE id = {}",
                    [payload, now_param(self.db), existing["id"]],
                )
            else:
                await self.db.execute(
                    "INSERT INTO jimu_import_mapping (entity, name, columns, updated_at) "
                    "VALUES ({}, {}, {}, {})",
                    [entity, name, payload, now_param(self.db)],
                )

    async def delete(self, entity: str, name: str) -> None:
        """Forget mapping ``name`` of ``entity``; 404 when there is none."""
        await self.get(entity, name)
        await self.db.execute(
            "DELETE FROM jimu_import_mapping WHERE entity = {} AND name = {}", [entity, name]
        )


def label_of(rt: EntityRuntime, name: str, locale: str) -> str:
    """A field's label in ``locale`` (its name when it has none); ``ID`` for the id."""
    if name == "id":
        return "ID"
    if name in ("created_at", "updated_at"):
        return (
            {"created_at": "创建时间", "updated_at": "修改时间"}[name]
            if locale.startswith("zh")
            else {"created_at": "Created at", "updated_at": "Updated at"}[name]
        )
    return translate(rt.fields[name].label, locale, fallback=name)
