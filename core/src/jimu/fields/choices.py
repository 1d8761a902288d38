"""List field types stored as JSON arrays: multi select and tags."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any, ClassVar

import msgspec

from jimu.fields import Storage
from jimu.fields.cells import CellError
from jimu.fields.common import CanonicalType, check_int_option, has_separator, split_list
from jimu.meta import FieldDef, MetadataError, Translatable

__all__ = ["MultiSelectType", "TagsType"]

_SEPARATOR_WORDS = "a comma, semicolon, 、, | or line break"


def _cell_items(cell: Any) -> list[Any]:
    """The items of an imported list cell: a JSON array, or text split at separators."""
    if isinstance(cell, list | tuple):
        return list(cell)
    if isinstance(cell, bool) or not isinstance(cell, str | int | float):
        raise CellError(f"{cell!r} is not a list")
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    text = str(cell).strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            raise CellError(f"{cell!r} is not a JSON array") from None
        if not isinstance(items, list):
            raise CellError(f"{cell!r} is not a JSON array")
        return items
    return split_list(text)


def _join(value: Any) -> Any:
    if value is None:
        return None
    return ", ".join(str(item) for item in value)


class MultiSelectType(CanonicalType):
    """Any number of values out of ``choices``, stored as a JSON array in choice order.

    ``max_count`` limits how many may be chosen. Filter with
    ``{"has_tag": [{"var": "field"}, "choice"]}``.
    """

    name = "multi_select"
    storage: ClassVar[Storage] = "json"
    widget = "multi_select"
    label: ClassVar[Translatable] = {"en": "Multiple select", "zh-CN": "多选"}
    allowed_options = frozenset({"choices", "max_count"})

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        choices = field.options.get("choices")
        if (
            not isinstance(choices, list)
            or not choices
            or not all(isinstance(choice, str) and choice.strip() for choice in choices)
        ):
            raise MetadataError(
                f"{path}.options.choices", "a multi_select field needs a list of non-empty strings"
            )
        for position, choice in enumerate(choices):
            if choice != choice.strip() or has_separator(choice):
                raise MetadataError(
                    f"{path}.options.choices[{position}]",
                    f"{choice!r}: a choice may not hold {_SEPARATOR_WORDS} "
                    "or start or end with a space (imports split lists there)",
                )
            if choice in choices[:position]:
                raise MetadataError(
                    f"{path}.options.choices[{position}]", f"{choice!r} is listed twice"
                )
        check_int_option(field, path, "max_count", len(choices), 1, len(choices))

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[list[str], msgspec.Meta(max_length=1000)]

    def validate(self, field: FieldDef, value: Any) -> str | None:
        choices = field.options["choices"]
        for item in value:
            if item not in choices:
                return f"{item!r} is not one of {', '.join(map(repr, choices))}"
        limit = field.options.get("max_count")
        if limit is not None and len(set(value)) > limit:
            return f"has {len(set(value))} choices; at most {limit} may be chosen"
        return None

    def normalize(self, field: FieldDef, value: Any) -> Any:
        chosen = set(value)
        return [choice for choice in field.options["choices"] if choice in chosen]

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        by_fold = {choice.casefold(): choice for choice in field.options["choices"]}
        items = []
        for item in _cell_items(cell):
            text = str(item).strip()
            items.append(by_fold.get(text.casefold(), text))
        return items

    def format_cell(self, field: FieldDef, value: Any, timezone: dt.tzinfo) -> Any:
        return _join(value)

    def filter_operators(self, field: FieldDef) -> tuple[str, ...]:
        return ("has_tag", "missing")


def _clean_tag(tag: str) -> str:
    return re.sub(r"\s+", " ", tag).strip()


class TagsType(CanonicalType):
    """Free-form labels, stored as a JSON array: trimmed, blanks dropped, duplicates removed.

    ``max_count`` (default 20) tags of at most ``max_length`` (default 32)
    characters each. Filter with ``{"has_tag": [{"var": "field"}, "vip"]}``.
    """

    name = "tags"
    storage: ClassVar[Storage] = "json"
    widget = "tags"
    label: ClassVar[Translatable] = {"en": "Tags", "zh-CN": "标签"}
    allowed_options = frozenset({"max_count", "max_length"})

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        check_int_option(field, path, "max_count", 20, 1, 200)
        check_int_option(field, path, "max_length", 32, 1, 255)

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[
            list[Annotated[str, msgspec.Meta(max_length=1000)]], msgspec.Meta(max_length=1000)
        ]

    def validate(self, field: FieldDef, value: Any) -> str | None:
        longest = int(field.options.get("max_length", 32))
        for item in value:
            tag = _clean_tag(item)
            if has_separator(tag):
                return f"tag {tag!r} holds {_SEPARATOR_WORDS}; write it as separate tags"
            if len(tag) > longest:
                return f"tag {tag!r} is longer than {longest} characters"
        count = len(self.normalize(field, value))
        limit = int(field.options.get("max_count", 20))
        if count > limit:
            return f"has {count} tags; at most {limit} are allowed"
        return None

    def normalize(self, field: FieldDef, value: Any) -> Any:
        return list(dict.fromkeys(tag for item in value if (tag := _clean_tag(item))))

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        return [str(item).strip() for item in _cell_items(cell)]

    def format_cell(self, field: FieldDef, value: Any, timezone: dt.tzinfo) -> Any:
        return _join(value)

    def filter_operators(self, field: FieldDef) -> tuple[str, ...]:
        return ("has_tag", "missing")
