"""Field types the kernel fills in: formulas, auto-numbers, write timestamps; and passwords.

* ``formula``: a JsonLogic rule over the record, computed on every write and
  stored, so it filters and sorts in SQL like any column. ``returns`` picks
  its storage (text, integer, decimal, boolean, date, datetime).
* ``auto_number``: ``ORD-{YYYY}-{#####}`` numbers from a counter row that the
  write's transaction increments atomically, so concurrent inserts never get
  the same number; the counter restarts when the date part changes.
* ``created_time`` / ``modified_time``: when the record was created / last
  changed (the kernel's own ``created_at`` / ``updated_at`` columns exist on
  every entity; these put the moment on a form or in a report under a name).
* ``password``: hashed with argon2 before it is stored, never returned,
  exported, filtered or sorted on; :meth:`PasswordType.verify` checks a guess.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar

import msgspec

from jimu.auth.passwords import hash_password, verify_password
from jimu.errors import FieldProblem, ValidationFailed
from jimu.fields import Dialect, FieldType, Storage, WriteContext
from jimu.meta import EntityDef, FieldDef, MetadataError, Translatable

__all__ = ["AutoNumberType", "CreatedTimeType", "FormulaType", "ModifiedTimeType", "PasswordType"]

_RETURNS: dict[str, Storage] = {
    "text": "text",
    "integer": "integer",
    "decimal": "decimal",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
}


class FormulaType(FieldType):
    """A value computed from the record by a JsonLogic rule (option ``rule``)."""

    name = "formula"
    storage: ClassVar[Storage] = "text"
    widget = "formula"
    label: ClassVar[Translatable] = {"en": "Formula", "zh-CN": "公式"}
    allowed_options = frozenset({"rule", "returns", "scale"})
    writable = False

    def storage_for(self, field: FieldDef) -> Storage:
        return _RETURNS.get(str(field.options.get("returns", "text")), "text")

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        if "rule" not in field.options:
            raise MetadataError(f"{path}.options.rule", "a formula needs a JsonLogic rule")
        returns = field.options.get("returns", "text")
        if returns not in _RETURNS:
            raise MetadataError(
                f"{path}.options.returns", f"must be one of {', '.join(sorted(_RETURNS))}"
            )
        scale = field.options.get("scale", 2)
        if not isinstance(scale, int) or isinstance(scale, bool) or not 0 <= scale <= 12:
            raise MetadataError(f"{path}.options.scale", "must be a whole number from 0 to 12")

    def check_in_entity(
        self, field: FieldDef, entity: EntityDef, path: str, rules: Any, model: Mapping[str, Any]
    ) -> None:
        from jimu.rules import RuleError

        try:
            compiled = rules.compile(field.options["rule"])
        except RuleError as exc:
            raise MetadataError(f"{path}.options.rule", str(exc)) from exc
        known = {f.name: f for f in entity.fields}
        for name in sorted(compiled.fields_read()):
            head = name.split(".", 1)[0]
            if head not in known and head not in {"id", "created_at", "updated_at"}:
                raise MetadataError(
                    f"{path}.options.rule", f"the rule reads unknown field {name!r}"
                )
            if head in known and known[head].type == "formula":
                raise MetadataError(
                    f"{path}.options.rule",
                    f"the rule reads formula {head!r}; formulas read stored fields only",
                )

    def fills_on_update(self, field: FieldDef) -> bool:
        return True

    def reader(self, field: FieldDef, dialect: Dialect) -> Callable[[Any], Any] | None:
        read = super().reader(field, dialect)
        if self.storage_for(field) != "decimal":
            return read
        exponent = Decimal(1).scaleb(-int(field.options.get("scale", 2)))
        if read is None:
            return lambda value: value.quantize(exponent)
        return lambda value: read(value).quantize(exponent)

    async def fill(self, field: FieldDef, context: WriteContext) -> Any:
        from jimu.rules import RuleError

        try:
            result = context.site.rules.compile(field.options["rule"])(dict(context.record))
        except RuleError as exc:
            raise ValidationFailed(
                FieldProblem(field.name, f"could not be computed: {exc}")
            ) from exc
        return _coerce(
            result, self.storage_for(field), int(field.options.get("scale", 2)), field.name
        )


def _coerce(result: Any, storage: Storage, scale: int, name: str) -> Any:
    """A rule's result as a value of the formula's storage (``None`` stays ``None``)."""
    if result is None:
        return None
    try:
        if storage == "text":
            if isinstance(result, bool):
                return "true" if result else "false"
            if isinstance(result, float) and result.is_integer():
                return str(int(result))
            return str(result)
        if storage == "boolean":
            from jimu.rules import truthy

            return truthy(result)
        if storage == "integer":
            if isinstance(result, bool) or not isinstance(result, int | float | Decimal | str):
                raise ValueError(result)
            number = Decimal(str(result))
            if number != number.to_integral_value():
                raise ValueError(result)
            return int(number)
        if storage == "decimal":
            if isinstance(result, bool):
                raise ValueError(result)
            number = Decimal(str(result))
            if not number.is_finite():
                raise ValueError(result)
            return number.quantize(Decimal(1).scaleb(-scale))
        if storage == "date":
            return (
                result
                if isinstance(result, dt.date) and not isinstance(result, dt.datetime)
                else dt.date.fromisoformat(str(result)[:10])
            )
        if storage == "datetime":
            moment = (
                result
                if isinstance(result, dt.datetime)
                else dt.datetime.fromisoformat(str(result))
            )
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise ValidationFailed(
            FieldProblem(name, f"the formula gave {result!r}, which is not a {storage} value")
        ) from exc
    raise ValidationFailed(FieldProblem(name, f"a formula cannot return {storage}"))


_TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|#+)\}")


class AutoNumberType(FieldType):
    """Numbers like ``ORD-2024-00042`` (option ``pattern``), unique under concurrent inserts."""

    name = "auto_number"
    storage: ClassVar[Storage] = "text"
    widget = "auto_number"
    label: ClassVar[Translatable] = {"en": "Auto number", "zh-CN": "自动编号"}
    allowed_options = frozenset({"pattern"})
    writable = False

    def pattern(self, field: FieldDef) -> str:
        """The number's pattern (default ``{#####}``)."""
        return str(field.options.get("pattern", "{#####}"))

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        pattern = field.options.get("pattern", "{#####}")
        if not isinstance(pattern, str) or len(pattern) > 64:
            raise MetadataError(f"{path}.options.pattern", "must be text of at most 64 characters")
        counters = [token for token in _TOKEN.findall(pattern) if token.startswith("#")]
        if len(counters) != 1:
            raise MetadataError(
                f"{path}.options.pattern",
                "needs exactly one counter like {#####} (and may use {YYYY}, {YY}, {MM}, {DD})",
            )
        leftover = _TOKEN.sub("", pattern)
        if "{" in leftover or "}" in leftover:
            raise MetadataError(
                f"{path}.options.pattern", "knows only {YYYY}, {YY}, {MM}, {DD} and {###}"
            )

    async def fill(self, field: FieldDef, context: WriteContext) -> Any:
        local = context.now.astimezone(zoneinfo.ZoneInfo(context.site.config.timezone))
        parts = {
            "YYYY": f"{local.year:04d}",
            "YY": f"{local.year % 100:02d}",
            "MM": f"{local.month:02d}",
            "DD": f"{local.day:02d}",
        }
        pattern = self.pattern(field)
        period = _TOKEN.sub(lambda m: parts.get(m.group(1), "#"), pattern)
        key = f"{context.entity.name}.{field.name}:{period}"
        number = await _next_counter(context.site.db, key)
        return _TOKEN.sub(
            lambda m: (
                f"{number:0{len(m.group(1))}d}" if m.group(1).startswith("#") else parts[m.group(1)]
            ),
            pattern,
        )


async def _next_counter(db: Any, key: str) -> int:
    """Increment the counter ``key`` inside the current transaction; return its new value."""
    rows = await db.fetch(
        "INSERT INTO jimu_counter (key, value) VALUES ({}, 1) "
        "ON CONFLICT (key) DO UPDATE SET value = jimu_counter.value + 1 RETURNING value",
        [key],
    )
    return int(rows[0]["value"])


class CreatedTimeType(FieldType):
    """When the record was created (set once by the kernel)."""

    name = "created_time"
    storage: ClassVar[Storage] = "datetime"
    widget = "datetime"
    label: ClassVar[Translatable] = {"en": "Created at", "zh-CN": "创建时间"}
    writable = False

    async def fill(self, field: FieldDef, context: WriteContext) -> Any:
        if context.before is not None:
            return context.before.get(field.name)
        return context.now


class ModifiedTimeType(FieldType):
    """When the record last changed (set by the kernel on every write that changes it)."""

    name = "modified_time"
    storage: ClassVar[Storage] = "datetime"
    widget = "datetime"
    label: ClassVar[Translatable] = {"en": "Modified at", "zh-CN": "修改时间"}
    writable = False

    def fills_on_update(self, field: FieldDef) -> bool:
        return True

    async def fill(self, field: FieldDef, context: WriteContext) -> Any:
        return context.now


class PasswordType(FieldType):
    """A secret: stored as an argon2 hash, never returned, exported, filtered or sorted on."""

    name = "password"
    storage: ClassVar[Storage] = "text"
    widget = "password"
    label: ClassVar[Translatable] = {"en": "Password", "zh-CN": "密码"}
    allowed_options = frozenset({"min_length"})
    readable = False

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        length = field.options.get("min_length", 8)
        if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= 128:
            raise MetadataError(
                f"{path}.options.min_length", "must be a whole number from 1 to 128"
            )

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[
            str, msgspec.Meta(min_length=int(field.options.get("min_length", 8)), max_length=1024)
        ]

    def to_db(self, field: FieldDef, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return hash_password(value)  # never the plain text, whatever path the value took

    def verify(self, stored: str | None, candidate: str) -> bool:
        """Whether ``candidate`` is the password whose hash is ``stored``."""
        return verify_password(stored, candidate)

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        from jimu.fields.cells import CellError

        raise CellError("passwords are not imported; set them through the API")
