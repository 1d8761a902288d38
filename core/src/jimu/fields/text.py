"""Text-like field types: rich text (sanitised HTML), colour and barcode."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, ClassVar

import msgspec
import nh3

from jimu.fields import Storage
from jimu.fields.cells import CellError
from jimu.fields.common import CanonicalType, check_choice_option, check_int_option
from jimu.meta import FieldDef, Translatable

__all__ = [
    "BARCODE_FORMATS",
    "RICH_TEXT_ATTRIBUTES",
    "RICH_TEXT_TAGS",
    "BarcodeType",
    "ColorType",
    "RichTextType",
    "barcode_problem",
    "sanitize_html",
]

#: The HTML elements a rich-text value may hold; anything else is removed (its text kept).
RICH_TEXT_TAGS: frozenset[str] = frozenset(
    {
        *("p", "br", "hr", "div", "span", "blockquote", "pre", "code"),
        *("h1", "h2", "h3", "h4", "h5", "h6"),
        *("strong", "b", "em", "i", "u", "s", "del", "ins", "sub", "sup", "mark", "small"),
        *("ul", "ol", "li", "dl", "dt", "dd"),
        *("a", "img", "figure", "figcaption"),
        *("table", "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "th", "td"),
    }
)
#: Attributes kept per element (``*``: on every element). ``on*`` handlers never are.
RICH_TEXT_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"style", "title", "lang", "dir"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
}
#: CSS properties kept inside ``style`` (positioning and the like are dropped).
RICH_TEXT_STYLES: frozenset[str] = frozenset(
    {
        "color",
        "background-color",
        "text-align",
        "text-decoration",
        "font-weight",
        "font-style",
        "font-size",
        "line-height",
        "margin-left",
        "padding-left",
        "width",
        "height",
    }
)
_URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})


def sanitize_html(html: str) -> str:
    """``html`` with only :data:`RICH_TEXT_TAGS`, safe attributes, URLs and styles left.

    Scripts and styles are removed with their content, event handlers and
    ``javascript:`` URLs are dropped, links get ``rel="noopener noreferrer"``.
    """
    return nh3.clean(
        html,
        tags=set(RICH_TEXT_TAGS),
        attributes=RICH_TEXT_ATTRIBUTES,
        tag_attribute_values={"a": {"target": {"_blank"}}},
        url_schemes=set(_URL_SCHEMES),
        filter_style_properties=set(RICH_TEXT_STYLES),
        link_rel="noopener noreferrer",
    )


class RichTextType(CanonicalType):
    """Formatted text as HTML, sanitised on every write (at most ``max_length`` characters)."""

    name = "rich_text"
    storage: ClassVar[Storage] = "text"
    widget = "rich_text"
    label: ClassVar[Translatable] = {"en": "Rich text", "zh-CN": "富文本"}
    allowed_options = frozenset({"max_length"})

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        check_int_option(field, path, "max_length", 100_000, 1, 10_000_000)

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[
            str, msgspec.Meta(max_length=int(field.options.get("max_length", 100_000)))
        ]

    def normalize(self, field: FieldDef, value: Any) -> Any:
        return sanitize_html(value)

    def filter_operators(self, field: FieldDef) -> tuple[str, ...]:
        return ("contains", "missing")


_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_RGB = re.compile(r"^rgb\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)$", re.IGNORECASE)


def _hex_color(text: str) -> str | None:
    """``"#ABC"``, ``"aabbcc"`` or ``"rgb(170, 187, 204)"`` -> ``"#aabbcc"``; else ``None``."""
    text = text.strip()
    if match := _HEX.match(text):
        digits = match[1].lower()
        if len(digits) == 3:
            digits = "".join(digit * 2 for digit in digits)
        return "#" + digits
    if match := _RGB.match(text):
        channels = [int(part) for part in match.groups()]
        if all(channel <= 255 for channel in channels):
            return "#" + "".join(f"{channel:02x}" for channel in channels)
    return None


class ColorType(CanonicalType):
    """A colour, stored as lower-case ``#rrggbb``.

    Input may be ``#RRGGBB``, ``#RGB``, the same without ``#``, or ``rgb(r, g, b)``.
    """

    name = "color"
    storage: ClassVar[Storage] = "text"
    widget = "color"
    label: ClassVar[Translatable] = {"en": "Color", "zh-CN": "颜色"}

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[str, msgspec.Meta(max_length=32)]

    def validate(self, field: FieldDef, value: Any) -> str | None:
        if _hex_color(value) is None:
            return f"{value!r} is not a colour (write #1e90ff)"
        return None

    def normalize(self, field: FieldDef, value: Any) -> Any:
        return _hex_color(value) or value

    def filter_operators(self, field: FieldDef) -> tuple[str, ...]:
        return ("==", "!=", "in", "missing")


#: Values of the barcode option ``format``.
BARCODE_FORMATS = ("ean", "ean13", "ean8", "upca", "code128")
_GTIN_LENGTHS = {"ean": (8, 12, 13), "ean13": (13,), "ean8": (8,), "upca": (12,)}
_GTIN_NAMES = {8: "EAN-8", 12: "UPC-A", 13: "EAN-13"}
_FORMAT_NAMES = {
    "ean": "EAN-13, EAN-8 or UPC-A",
    "ean13": "EAN-13",
    "ean8": "EAN-8",
    "upca": "UPC-A",
    "code128": "Code 128",
}


def gtin_check_digit(body: str) -> int:
    """The GS1 check digit of the digits before it (weights 3, 1, 3, ... from the right)."""
    total = sum(
        int(digit) * (3 if position % 2 == 0 else 1)
        for position, digit in enumerate(reversed(body))
    )
    return (10 - total % 10) % 10


def _compact(text: str) -> str:
    return re.sub(r"[\s-]", "", text)


def barcode_problem(text: str, barcode_format: str) -> str | None:
    """Why ``text`` is not a barcode of ``barcode_format``; ``None`` when it is one."""
    if barcode_format == "code128":
        if not 1 <= len(text) <= 80:
            return "a Code 128 barcode has 1 to 80 characters"
        if any(not 32 <= ord(char) <= 126 for char in text):
            return f"{text!r} has characters Code 128 cannot encode (printable ASCII only)"
        return None
    digits = _compact(text)
    lengths = _GTIN_LENGTHS[barcode_format]
    if not digits.isascii() or not digits.isdigit() or len(digits) not in lengths:
        return f"{text!r} is not an {_FORMAT_NAMES[barcode_format]} barcode (" + (
            " or ".join(str(n) for n in lengths) + " digits)"
        )
    expected = gtin_check_digit(digits[:-1])
    if int(digits[-1]) != expected:
        return (
            f"{text!r} has a wrong check digit for {_GTIN_NAMES[len(digits)]} "
            f"(expected {expected}, not {digits[-1]})"
        )
    return None


class BarcodeType(CanonicalType):
    """A product barcode: EAN-13, EAN-8 or UPC-A with a valid check digit (option
    ``format``: ``ean`` (any of the three, default), ``ean13``, ``ean8``, ``upca``),
    or Code 128 text (``format: code128``, printable ASCII)."""

    name = "barcode"
    storage: ClassVar[Storage] = "text"
    widget = "barcode"
    label: ClassVar[Translatable] = {"en": "Barcode", "zh-CN": "条形码"}
    allowed_options = frozenset({"format"})

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        check_choice_option(field, path, "format", BARCODE_FORMATS, "ean")

    def _format(self, field: FieldDef) -> str:
        return str(field.options.get("format", "ean"))

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[str, msgspec.Meta(max_length=80)]

    def validate(self, field: FieldDef, value: Any) -> str | None:
        return barcode_problem(value, self._format(field))

    def normalize(self, field: FieldDef, value: Any) -> Any:
        return value if self._format(field) == "code128" else _compact(value)

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        barcode_format = self._format(field)
        if isinstance(cell, bool):
            raise CellError(f"{cell!r} is not a barcode")
        if isinstance(cell, int | float):
            if not float(cell).is_integer() or cell < 0:
                raise CellError(f"{cell!r} is not a barcode")
            digits = str(int(cell))
            if barcode_format != "code128":
                # a number column drops leading zeros: 0012345678905 arrives as 12345678905
                for length in _GTIN_LENGTHS[barcode_format]:
                    padded = digits.zfill(length)
                    if len(padded) == length and barcode_problem(padded, barcode_format) is None:
                        return padded
            return digits
        text = str(cell).strip().lstrip("'")
        return text if barcode_format == "code128" else _compact(text)
