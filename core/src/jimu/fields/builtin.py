"""The kernel's built-in field types, registered as a plugin like any other.

The foundation set (text, numbers, dates, choices, JSON, links) lives here;
the rest of the catalogue in the modules next to it: :mod:`~jimu.fields.text`
(rich text, colour, barcode), :mod:`~jimu.fields.numbers` (currency, percent,
rating), :mod:`~jimu.fields.times` (time, duration), :mod:`~jimu.fields.contact`
(phone), :mod:`~jimu.fields.choices` (multi select, tags), :mod:`~jimu.fields.geo`
(geolocation) and :mod:`~jimu.fields.china` (region). The plugin also adds the
rule operators those types filter with (``in_region``, ``geo_within``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Annotated, Any, ClassVar

import msgspec

from jimu.fields import Dialect, FieldType, Storage
from jimu.fields.china import IN_REGION, RegionType
from jimu.fields.choices import MultiSelectType, TagsType
from jimu.fields.computed import (
    AutoNumberType,
    CreatedTimeType,
    FormulaType,
    ModifiedTimeType,
    PasswordType,
)
from jimu.fields.contact import PhoneType
from jimu.fields.files import AttachmentType, ImageType
from jimu.fields.geo import GEO_WITHIN, GeolocationType
from jimu.fields.numbers import CurrencyType, PercentType, RatingType
from jimu.fields.people import CreatedByType, ModifiedByType, UserType
from jimu.fields.relations import ChildTableType, LookupType, MultiLinkType, RollupType
from jimu.fields.text import BarcodeType, ColorType, RichTextType
from jimu.fields.times import DurationType, TimeType
from jimu.hookspecs import hookimpl
from jimu.meta import FieldDef, MetadataError, PluginInfo, Translatable
from jimu.rules import Operator

PLUGIN = PluginInfo(
    name="jimu.fields",
    version="0.1.0",
    label={"en": "Built-in field types", "zh-CN": "内置字段类型"},
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^\s/$.?#].[^\s]*$", re.IGNORECASE)


class TextType(FieldType):
    """A single line of text, at most ``max_length`` characters (default 255)."""

    name = "text"
    storage: ClassVar[Storage] = "text"
    widget = "input"
    label: ClassVar[Translatable] = {"en": "Text", "zh-CN": "单行文本"}
    allowed_options = frozenset({"max_length"})

    def max_length(self, field: FieldDef) -> int:
        """The longest value allowed."""
        return int(field.options.get("max_length", 255))

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        length = field.options.get("max_length", 255)
        if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= 65535:
            raise MetadataError(
                f"{path}.options.max_length", "max_length must be a whole number from 1 to 65535"
            )

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[str, msgspec.Meta(max_length=self.max_length(field))]


class LongTextType(FieldType):
    """Multi-line plain text without a length limit."""

    name = "long_text"
    storage: ClassVar[Storage] = "text"
    widget = "textarea"
    label: ClassVar[Translatable] = {"en": "Long text", "zh-CN": "多行文本"}


class EmailType(FieldType):
    """An e-mail address (stored lower-cased in the domain part as given)."""

    name = "email"
    storage: ClassVar[Storage] = "text"
    widget = "email"
    label: ClassVar[Translatable] = {"en": "Email", "zh-CN": "邮箱"}

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[str, msgspec.Meta(max_length=320)]

    def validate(self, field: FieldDef, value: Any) -> str | None:
        return None if _EMAIL.match(value) else f"{value!r} is not an e-mail address"

    def validate_column(self, field: FieldDef, values: Sequence[Any]) -> list[str | None] | None:
        match = _EMAIL.match
        if all([value is None or match(value) for value in values]):
            return None
        return super().validate_column(field, values)


class UrlType(FieldType):
    """An http(s) URL."""

    name = "url"
    storage: ClassVar[Storage] = "text"
    widget = "url"
    label: ClassVar[Translatable] = {"en": "URL", "zh-CN": "网址"}

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[str, msgspec.Meta(max_length=2048)]

    def validate(self, field: FieldDef, value: Any) -> str | None:
        return None if _URL.match(value) else f"{value!r} is not an http(s) URL"


class IntegerType(FieldType):
    """A whole number, optionally bounded by ``min`` and ``max``."""

    name = "integer"
    storage: ClassVar[Storage] = "integer"
    widget = "number"
    label: ClassVar[Translatable] = {"en": "Integer", "zh-CN": "整数"}
    allowed_options = frozenset({"min", "max"})

    def input_type(self, field: FieldDef) -> Any:
        low = field.options.get("min", -(2**63))
        high = field.options.get("max", 2**63 - 1)
        return Annotated[int, msgspec.Meta(ge=low, le=high)]


class DecimalType(FieldType):
    """An exact decimal number with ``precision`` digits, ``scale`` after the point."""

    name = "decimal"
    storage: ClassVar[Storage] = "decimal"
    widget = "decimal"
    label: ClassVar[Translatable] = {"en": "Decimal", "zh-CN": "小数"}
    allowed_options = frozenset({"precision", "scale", "min", "max"})

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        precision = field.options.get("precision", 18)
        scale = field.options.get("scale", 2)
        if not (isinstance(precision, int) and 1 <= precision <= 38):
            raise MetadataError(f"{path}.options.precision", "precision must be from 1 to 38")
        if not (isinstance(scale, int) and 0 <= scale <= precision):
            raise MetadataError(f"{path}.options.scale", "scale must be from 0 to precision")

    def digits(self, field: FieldDef) -> tuple[int, int]:
        """``(precision, scale)`` of the column."""
        options = field.options
        return int(options.get("precision", 18)), int(options.get("scale", 2))

    def validate(self, field: FieldDef, value: Any) -> str | None:
        # a value is checked for every imported row, so this stays cheap: the digits
        # after the point are counted in the value's text (as_tuple costs eight times
        # as much), unless the text is in exponent notation
        if not value.is_finite():
            return "must be a finite number"
        precision, scale = self.digits(field)
        text = str(value)
        if "E" in text:
            places = -value.as_tuple().exponent
        else:
            point = text.find(".")
            places = len(text) - point - 1 if point >= 0 else 0
        if places > scale:
            return f"has more than {scale} digits after the decimal point"
        # |value| >= 10 ** (precision - scale); adjusted() is the exponent of the first digit
        if value and value.adjusted() >= precision - scale:
            return f"is too large for {precision} digits with {scale} after the point"
        options = field.options
        if "min" in options and value < Decimal(str(options["min"])):
            return f"must be at least {options['min']}"
        if "max" in options and value > Decimal(str(options["max"])):
            return f"must be at most {options['max']}"
        return None

    def validate_column(self, field: FieldDef, values: Sequence[Any]) -> list[str | None] | None:
        # One quantize per value, in a context that traps what validate refuses: digits
        # dropped after the point (Rounded, zeros too), more digits than the precision
        # and infinities (InvalidOperation). Two refusals pass quantize quietly: NaN,
        # which min and max then trap, and a zero with more places than the scale
        # (0.000), which only its exponent shows. Any of these, and every value goes
        # through validate, which names each.
        present = [value for value in values if value is not None]
        if len(present) < 2:  # min and max of one value compare nothing
            return super().validate_column(field, values)
        precision, scale = self.digits(field)
        exponent, context = _quantizing(precision, scale)
        try:
            quantized = [value.quantize(exponent, context=context) for value in present]
            lowest, highest = min(quantized), max(quantized)
        except (ArithmeticError, TypeError, AttributeError):
            return super().validate_column(field, values)
        options = field.options
        if (
            any([value.as_tuple().exponent < -scale for value in present if not value])
            or ("min" in options and lowest < Decimal(str(options["min"])))
            or ("max" in options and highest > Decimal(str(options["max"])))
        ):
            return super().validate_column(field, values)
        return None

    def reader(self, field: FieldDef, dialect: Dialect) -> Callable[[Any], Any] | None:
        # SQLite keeps NUMERIC as a float when it is not whole: restore the exact scale.
        exponent = Decimal(1).scaleb(-self.digits(field)[1])
        to_decimal = super().reader(field, dialect)
        if to_decimal is None:
            return lambda value: value.quantize(exponent)
        return lambda value: to_decimal(value).quantize(exponent)


class BooleanType(FieldType):
    """Yes or no."""

    name = "boolean"
    storage: ClassVar[Storage] = "boolean"
    widget = "switch"
    label: ClassVar[Translatable] = {"en": "Yes/No", "zh-CN": "是/否"}


class DateType(FieldType):
    """A calendar date (``YYYY-MM-DD``)."""

    name = "date"
    storage: ClassVar[Storage] = "date"
    widget = "date"
    label: ClassVar[Translatable] = {"en": "Date", "zh-CN": "日期"}


class DateTimeType(FieldType):
    """A moment in time; input must carry a UTC offset, storage is UTC."""

    name = "datetime"
    storage: ClassVar[Storage] = "datetime"
    widget = "datetime"
    label: ClassVar[Translatable] = {"en": "Date and time", "zh-CN": "日期时间"}

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[dt.datetime, msgspec.Meta(tz=True)]


class SelectType(FieldType):
    """One value out of ``choices`` (a list of strings)."""

    name = "select"
    storage: ClassVar[Storage] = "text"
    widget = "select"
    label: ClassVar[Translatable] = {"en": "Single select", "zh-CN": "单选"}
    allowed_options = frozenset({"choices"})

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        choices = field.options.get("choices")
        if (
            not isinstance(choices, list)
            or not choices
            or not all(isinstance(choice, str) and choice for choice in choices)
        ):
            raise MetadataError(
                f"{path}.options.choices", "a select field needs a list of non-empty strings"
            )

    def validate(self, field: FieldDef, value: Any) -> str | None:
        choices = field.options["choices"]
        if value not in choices:
            return f"{value!r} is not one of {', '.join(map(repr, choices))}"
        return None

    def validate_column(self, field: FieldDef, values: Sequence[Any]) -> list[str | None] | None:
        try:  # a column holds a few distinct values: compare those with the choices
            unknown = set(values).difference(field.options["choices"])
        except TypeError:  # an unhashable value: validate says why
            return super().validate_column(field, values)
        unknown.discard(None)
        return super().validate_column(field, values) if unknown else None


class JsonType(FieldType):
    """Any JSON value."""

    name = "json"
    storage: ClassVar[Storage] = "json"
    widget = "json"
    label: ClassVar[Translatable] = {"en": "JSON", "zh-CN": "JSON"}


class LinkType(FieldType):
    """A link to one record of another entity (many-to-one), stored as its id."""

    name = "link"
    storage: ClassVar[Storage] = "link"
    widget = "link"
    label: ClassVar[Translatable] = {"en": "Link", "zh-CN": "关联"}
    allowed_options = frozenset({"target"})

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        if not isinstance(field.options.get("target"), str):
            raise MetadataError(
                f"{path}.options.target", "a link field needs the name of its target entity"
            )

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[int, msgspec.Meta(ge=1)]


BUILTIN_FIELD_TYPES: tuple[type[FieldType], ...] = (
    TextType,
    LongTextType,
    EmailType,
    UrlType,
    IntegerType,
    DecimalType,
    BooleanType,
    DateType,
    DateTimeType,
    SelectType,
    JsonType,
    LinkType,
    RichTextType,
    CurrencyType,
    PercentType,
    TimeType,
    DurationType,
    PhoneType,
    MultiSelectType,
    TagsType,
    RatingType,
    ColorType,
    BarcodeType,
    GeolocationType,
    RegionType,
    FormulaType,
    AutoNumberType,
    CreatedTimeType,
    ModifiedTimeType,
    PasswordType,
    LookupType,
    RollupType,
    AttachmentType,
    MultiLinkType,
    ChildTableType,
    ImageType,
    UserType,
    CreatedByType,
    ModifiedByType,
)


@hookimpl
def jimu_field_types() -> Sequence[FieldType]:
    """Register the kernel's field types."""
    return [field_type() for field_type in BUILTIN_FIELD_TYPES]


@hookimpl
def jimu_rule_operators() -> Sequence[Operator]:
    """The operators that filter by region (``in_region``) and by map box (``geo_within``)."""
    return [IN_REGION, GEO_WITHIN]


@functools.cache
def _quantizing(precision: int, scale: int) -> tuple[Decimal, decimal.Context]:
    """The exponent of ``scale`` places, and a context in which quantizing to it raises
    for a value that does not fit ``precision`` digits with ``scale`` after the point."""
    context = decimal.Context(prec=precision, traps=[decimal.Rounded, decimal.InvalidOperation])
    return Decimal(1).scaleb(-scale), context
