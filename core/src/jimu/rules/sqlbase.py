"""Types shared by the SQL compiler, the kernel operators and plugin operators.

The contract with the store (kept exactly):

* :class:`SqlColumn` - a ready SQL expression for a field (identifiers quoted,
  never values) and its field type.
* :class:`SqlScope` - ``resolve(path)`` gives the column for a var path such as
  ``"city"`` or ``"customer.city"``; None means the entity has no such field.
* :class:`SqlFragment` - ``sql`` uses piccolo's ``QueryString`` convention
  (``{}`` per parameter, literal braces doubled) and ``params`` are the values,
  typed for the dialect, so
  ``QueryString(frag.sql, *frag.params).compile_string(engine_type)`` renders it.

Storage conventions mirrored here. SQLite: text TEXT, integer INTEGER,
decimal NUMERIC, boolean INTEGER 0/1, date TEXT ``YYYY-MM-DD``, datetime TEXT
``YYYY-MM-DD HH:MM:SS.ffffff+00:00`` (UTC), json TEXT, link INTEGER.
PostgreSQL: text, bigint, numeric, boolean, date, timestamptz, jsonb, bigint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn, Protocol

from jimu.rules.errors import RuleNotSqlCompilable
from jimu.rules.values import to_number

if TYPE_CHECKING:
    from jimu.rules.registry import OperatorRegistry

__all__ = [
    "FIELD_TYPES",
    "NOT_CONST",
    "Dialect",
    "SqlCall",
    "SqlColumn",
    "SqlFragment",
    "SqlScope",
    "SqlValue",
    "format_sqlite_datetime",
    "sql_param",
]

Dialect = Literal["sqlite", "postgres"]

FIELD_TYPES: Final = frozenset(
    {"text", "integer", "decimal", "boolean", "date", "datetime", "json", "link"}
)
"""Field types a :class:`SqlColumn` may have."""

NUMERIC_TYPES: Final = frozenset({"integer", "decimal", "float", "link", "boolean"})
NOT_CONST: Final[Any] = object()


@dataclass(frozen=True, slots=True)
class SqlColumn:
    """A field as SQL: a ready expression (identifiers quoted, no values) and its type."""

    expr: str
    type: str


class SqlScope(Protocol):
    """Resolves the fields a rule reads to SQL columns."""

    def resolve(self, path: str) -> SqlColumn | None:
        """The column for ``path`` (``"city"``, ``"customer.city"``), or None if unknown."""


@dataclass(frozen=True, slots=True)
class SqlFragment:
    """A parameterised SQL condition in piccolo ``QueryString`` form."""

    sql: str
    params: tuple[Any, ...]

    def querystring(self) -> Any:
        """This fragment as a ``piccolo.querystring.QueryString``."""
        from piccolo.querystring import QueryString

        return QueryString(self.sql, *self.params)


@dataclass(frozen=True, slots=True)
class SqlValue:
    """An SQL expression with its parameters, value type and NULL behaviour.

    ``type`` is a field type, ``"float"`` (computed numbers) or ``"null"``.
    ``nullable`` says whether it can be NULL. ``null_if`` lists expressions
    (typically columns) such that the value is NULL (or, for a condition, NULL
    or false) whenever one of them is NULL, and not NULL otherwise; None when
    that is not known. The compiler uses it to keep conditions index-friendly
    (``x = ? AND x IS NOT NULL`` instead of ``COALESCE(x = ?, FALSE)``).
    ``const`` is the Python value when the expression is a literal.

    An operator's SQL form returns one of these; for a function that is NULL
    exactly when an argument is, pass the argument's ``nullable``/``null_if`` on.
    """

    sql: str
    params: tuple[Any, ...] = ()
    type: str = "text"
    nullable: bool = True
    null_if: tuple[str, ...] | None = None
    const: Any = NOT_CONST

    @property
    def is_const(self) -> bool:
        """True when this is a literal value known at compile time."""
        return self.const is not NOT_CONST


def format_sqlite_datetime(moment: datetime) -> str:
    """A datetime in the fixed UTC text form the SQLite store uses."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


_PG_CASTS: Final = {
    "text": "text",
    "integer": "bigint",
    "link": "bigint",
    "decimal": "numeric",
    "float": "float8",
    "boolean": "boolean",
    "date": "date",
    "datetime": "timestamptz",
    "json": "jsonb",
}


def _python_param(dialect: Dialect, value: Any, type_: str) -> Any:
    if type_ == "text":
        return str(value)
    if type_ in ("integer", "link"):
        return int(value)
    if type_ == "boolean":
        return (1 if value else 0) if dialect == "sqlite" else bool(value)
    if type_ == "decimal":
        number = to_number(value)
        if dialect == "postgres":
            return number if type(number) is Decimal else Decimal(repr(number))
        if type(number) is int:
            return number
        return float(number)
    if type_ == "float":
        return float(to_number(value))
    if type_ == "date":
        return value.isoformat() if dialect == "sqlite" else value
    if type_ == "datetime":
        return format_sqlite_datetime(value) if dialect == "sqlite" else value
    raise ValueError(f"no SQL parameter type {type_!r}")


def sql_param(dialect: Dialect, value: Any, type_: str) -> SqlValue:
    """A literal as a typed parameter (``{}``, with a cast on PostgreSQL)."""
    if value is None:
        return SqlValue("NULL", (), "null", True, (), None)
    converted = _python_param(dialect, value, type_)
    sql = "{}" if dialect == "sqlite" else "{}::" + _PG_CASTS[type_]
    return SqlValue(sql, (converted,), type_, False, (), value)


class SqlCall:
    """What an operator's SQL implementation receives: its arguments as SQL.

    ``args`` are the SQL forms of the arguments (literals have ``is_const``);
    ``fail(reason)`` raises :class:`RuleNotSqlCompilable` at this operator.
    """

    __slots__ = ("_resolve", "args", "dialect", "name", "path", "registry")

    def __init__(
        self,
        name: str,
        path: str,
        dialect: Dialect,
        args: list[SqlValue],
        registry: OperatorRegistry,
        resolve: Callable[[str, str], SqlValue],
    ) -> None:
        self.name = name
        self.path = path
        self.dialect = dialect
        self.args = args
        self.registry = registry
        self._resolve = resolve

    def field(self, path: str) -> SqlValue:
        """The SQL value of a field the operator reads implicitly (``has_tag`` reads ``tags``)."""
        return self._resolve(path, self.path)

    def fail(self, reason: str) -> NoReturn:
        """Give up: this call has no SQL form (the caller falls back to Python)."""
        raise RuleNotSqlCompilable(f"{self.name!r}: {reason}", self.path, self.name)

    def param(self, value: Any, type_: str) -> SqlValue:
        """A literal as a parameter of ``type_`` for this dialect."""
        return sql_param(self.dialect, value, type_)

    @property
    def timezone(self) -> tzinfo:
        """The site's time zone."""
        return self.registry.timezone

    def fixed_offset_minutes(self) -> int:
        """The site zone's UTC offset in minutes when it has no DST (SQLite needs that)."""
        offset = fixed_offset(self.registry.timezone)
        if offset is None:
            self.fail("SQLite cannot apply a time zone with daylight saving time")
        return offset


def fixed_offset(zone: tzinfo) -> int | None:
    """The zone's constant UTC offset in minutes from 1992 to 2100, or None if it changes."""
    offsets = set()
    for year in range(1992, 2101, 4):
        for month in (1, 4, 7, 10):
            moment = datetime(year, month, 1, 12, tzinfo=zone)
            delta = moment.utcoffset() or timedelta()
            offsets.add(int(delta.total_seconds() // 60))
    if len(offsets) == 1:
        return offsets.pop()
    return None
