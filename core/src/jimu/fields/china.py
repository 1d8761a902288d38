"""China's administrative divisions (province / city / district) and the region field type.

The divisions come from the dataset the ``cpca`` package ships
(``cpca/resources/adcodes.csv``: 12-digit codes of GB/T 2260 with names),
read lazily once per process. The package itself is not imported (its
``__init__`` needs ``pkg_resources`` and loads a large model); only its data
file is read.

A code's digits are its place in the tree: ``33`` 浙江省, ``3301`` 杭州市,
``330106`` 西湖区. Some city-level codes are placeholders, not cities:
``310100`` 市辖区 under the municipality 上海市, ``429000``
省直辖县级行政区划 grouping county-level cities that belong to 湖北省 directly.
This module hides them: 浦东新区 reads ``上海市/上海市/浦东新区`` and
仙桃市 ``湖北省/仙桃市``, and a placeholder code stands for its province.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar

import msgspec

from jimu.fields import Storage
from jimu.fields.common import CanonicalType, check_bool_option, check_choice_option
from jimu.meta import FieldDef, Translatable
from jimu.rules import Operator, SqlCall, SqlValue
from jimu.rules.errors import InvalidArgumentsError

__all__ = [
    "IN_REGION",
    "LEVELS",
    "Place",
    "RegionType",
    "Regions",
    "in_region",
    "regions",
]

#: Levels of the field option ``level``, coarsest first.
LEVELS = ("province", "city", "district")
_PLACEHOLDERS = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})
_SUFFIXES = sorted(
    (
        "特别行政区",
        "维吾尔自治区",
        "壮族自治区",
        "回族自治区",
        "自治区",
        "自治州",
        "自治县",
        "自治旗",
        "林区",
        "地区",
        "新区",
        "省",
        "市",
        "区",
        "县",
        "盟",
        "旗",
    ),
    key=len,
    reverse=True,
)
_SEPARATORS = re.compile(r"[\s/,，、|\\>\-]+")
_CODE = re.compile(r"^(\d{6})(\d{6})?$")


@dataclass(eq=False)
class Place:
    """One division: its 6-digit code, name, parent and (placeholder-free) children."""

    code: str
    name: str
    depth: int  # 1 province, 2 city, 3 district (from the shape of the code)
    parent: Place | None = None
    placeholder: bool = False
    municipality: bool = False
    children: list[Place] = field(default_factory=list)

    @property
    def province(self) -> Place:
        """The province this place belongs to (itself for a province)."""
        place = self
        while place.parent is not None:
            place = place.parent
        return place

    @property
    def levels(self) -> tuple[int, int]:
        """The lowest and highest level (1-3) this place can answer.

        A municipality is both a province and a city; a county-level city that
        belongs to its province directly (仙桃市) is both a city and a district.
        """
        if self.depth == 1:
            return (1, 2) if self.municipality else (1, 1)
        if self.depth == 3 and self.parent is not None and self.parent.depth == 1:
            return (3, 3) if self.parent.municipality else (2, 3)
        return self.depth, self.depth

    @property
    def prefix(self) -> str:
        """The code prefix every place inside this one shares (``33`` for 浙江省)."""
        if self.depth == 1:
            return self.code[:2]
        if self.depth == 2:
            return self.code[:4]
        return self.code

    def path(self) -> list[str]:
        """Names from the province down: ``["上海市", "上海市", "浦东新区"]``."""
        names: list[str] = []
        place: Place | None = self
        while place is not None:
            names.append(place.name)
            place = place.parent
        names.reverse()
        if self.depth == 3 and self.province.municipality:
            names.insert(1, names[0])
        return names

    def text(self) -> str:
        """``"浙江省/杭州市/西湖区"``."""
        return "/".join(self.path())

    def __repr__(self) -> str:
        return f"<Place {self.code} {self.text()}>"


def _aliases(name: str) -> list[str]:
    """The name and its short form without the administrative suffix (``浙江省`` -> ``浙江``)."""
    forms = [name]
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            forms.append(name[: -len(suffix)])
            break
    return forms


class Regions:
    """The division tree, indexed by code and by name."""

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        raw: dict[str, str] = {}
        for code, name in rows:
            raw.setdefault(code[:6], name.strip())
        self.by_code: dict[str, Place] = {}
        for code, name in sorted(raw.items()):
            depth = 1 if code[2:] == "0000" else 2 if code[4:] == "00" else 3
            self.by_code[code] = Place(code, name, depth)
        placeholders: dict[str, Place] = {}
        for code, place in self.by_code.items():
            if place.depth == 1:
                continue
            province = self.by_code.get(code[:2] + "0000")
            if province is None:
                continue
            if place.depth == 2:
                if place.name in _PLACEHOLDERS:
                    place.placeholder = True
                    place.parent = province
                    placeholders[code] = place
                    continue
                place.parent = province
            else:
                city = self.by_code.get(code[:4] + "00")
                place.parent = (
                    city if city is not None and city.name not in _PLACEHOLDERS else province
                )
            place.parent.children.append(place)
        for code in placeholders:
            province = self.by_code[code[:2] + "0000"]
            if not any(child.depth == 2 for child in province.children):
                province.municipality = True
        self.provinces = [p for p in self.by_code.values() if p.depth == 1]
        self._names: dict[str, list[tuple[str, Place | None]]] = {}

    def __iter__(self) -> Iterator[Place]:
        return (place for place in self.by_code.values() if not place.placeholder)

    def get(self, code: str) -> Place | None:
        """The place of a 6- or 12-digit code; a placeholder code gives its province."""
        match = _CODE.match(code.strip())
        if not match or (match[2] and match[2] != "000000"):
            return None
        place = self.by_code.get(match[1])
        if place is not None and place.placeholder:
            return place.province
        return place

    def _candidates(self, parent: Place | None) -> list[tuple[str, Place | None]]:
        """``(written form, place)`` for the level below ``parent``, longest form first.

        A ``None`` place means "skip": the municipality's name written again as
        its city (``上海市/上海市/浦东新区``) or a placeholder's name.
        """
        key = parent.code if parent is not None else ""
        cached = self._names.get(key)
        if cached is None:
            children = self.provinces if parent is None else parent.children
            forms: dict[str, list[Place]] = {}
            for child in children:
                for form in _aliases(child.name):
                    forms.setdefault(form, []).append(child)
            cached = []
            for form, places in forms.items():
                exact = [place for place in places if place.name == form]
                if len(places) == 1 or len(exact) == 1:
                    cached.append((form, places[0] if len(places) == 1 else exact[0]))
            if parent is not None and parent.depth == 1:
                skips = set(_PLACEHOLDERS)
                if parent.municipality:
                    skips.update(_aliases(parent.name))
                cached.extend((form, None) for form in skips)
            cached.sort(key=lambda item: len(item[0]), reverse=True)
            self._names[key] = cached
        return cached

    def find(self, text: str) -> Place | None:
        """The place ``text`` names or codes; ``None`` when there is no such place.

        Accepts codes (``330106``, ``330106000000``) and names from the
        province down, whole or short, separated by ``/``, spaces, commas or
        nothing: ``浙江省/杭州市/西湖区``, ``浙江省 杭州市 西湖区``,
        ``浙江杭州西湖``, ``上海市浦东新区``.
        """
        text = text.strip()
        if not text:
            return None
        if text.isdigit():
            return self.get(text)
        tokens = tuple(token for token in _SEPARATORS.split(text) if token)
        return self._match(tokens, None, skipped=False)

    def _match(
        self, tokens: tuple[str, ...], parent: Place | None, *, skipped: bool
    ) -> Place | None:
        """The place the ``tokens`` lead to below ``parent`` (trying longer names first)."""
        if not tokens:
            return parent
        if parent is not None and parent.depth == 3:
            return None
        token = tokens[0]
        for form, place in self._candidates(parent):
            if not token.startswith(form):
                continue
            rest = token[len(form) :]
            remaining = (rest, *tokens[1:]) if rest else tokens[1:]
            if place is None:
                found = None if skipped else self._match(remaining, parent, skipped=True)
            else:
                found = self._match(remaining, place, skipped=False)
            if found is not None:
                return found
        return None


@functools.cache
def regions() -> Regions:
    """The division tree from cpca's data file, loaded on first use."""
    spec = importlib.util.find_spec("cpca")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the cpca package (China's administrative divisions) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "adcodes.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [(row["adcode"], row["name"]) for row in csv.DictReader(handle)]
    return Regions(rows)


def _level(field: FieldDef) -> int:
    return LEVELS.index(str(field.options.get("level", "district"))) + 1


class RegionType(CanonicalType):
    """A province, city or district of China, stored as its 6-digit code (``330106``).

    Input is a code or names (``浙江省/杭州市/西湖区``, ``浙江省 杭州市 西湖区``,
    ``上海市/上海市/浦东新区``); exports write the names. ``level`` (``province``,
    ``city`` or ``district``, the default) is how precise a value must be; with
    ``partial: true`` a less precise value is accepted too. Filter by a place
    with ``{"in_region": [{"var": "field"}, "浙江省"]}`` or by the code prefix
    (``{"starts_with": [{"var": "field"}, "33"]}``).
    """

    name = "region"
    storage: ClassVar[Storage] = "text"
    widget = "region"
    label: ClassVar[Translatable] = {"en": "Region (China)", "zh-CN": "省市区"}
    allowed_options = frozenset({"level", "partial"})

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        check_choice_option(field, path, "level", LEVELS, "district")
        check_bool_option(field, path, "partial")

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[str, msgspec.Meta(max_length=64)]

    def validate(self, field: FieldDef, value: Any) -> str | None:
        place = regions().find(value)
        if place is None:
            return f"{value!r} is not a province, city or district of China"
        level = _level(field)
        lowest, highest = place.levels
        if lowest > level:
            return f"{place.text()!r} is more precise than this field, which records a {LEVELS[level - 1]}"
        if highest < level and place.children and not field.options.get("partial", False):
            wanted = LEVELS[level - 1]
            return f"{place.text()!r} is not precise enough: choose a {wanted} in it"
        return None

    def normalize(self, field: FieldDef, value: Any) -> Any:
        place = regions().find(value)
        return value if place is None else place.code

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        if (
            isinstance(cell, int | float)
            and not isinstance(cell, bool)
            and float(cell).is_integer()
        ):
            return str(int(cell))  # a code column read as numbers
        return str(cell).strip()

    def format_cell(self, field: FieldDef, value: Any, timezone: dt.tzinfo) -> Any:
        if value is None:
            return None
        place = regions().get(str(value))
        return place.text() if place is not None else value

    def filter_operators(self, field: FieldDef) -> tuple[str, ...]:
        return ("==", "!=", "in", "in_region", "starts_with", "missing")


def _place_arg(place: Any) -> Place:
    if not isinstance(place, str | int) or isinstance(place, bool):
        raise InvalidArgumentsError("in_region needs a place: a name such as 浙江省 or a code")
    found = regions().find(str(place))
    if found is None:
        raise InvalidArgumentsError(
            f"in_region: {place!r} is not a province, city or district of China"
        )
    return found


def in_region(code: Any, place: Any) -> bool:
    """Whether the region ``code`` lies in ``place`` (a name or code), or is it."""
    prefix = _place_arg(place).prefix
    return isinstance(code, str) and code.startswith(prefix)


def _in_region_sql(call: SqlCall) -> SqlValue:
    code, place = call.args
    if code.type not in ("text", "null"):
        call.fail(f"needs a region field, not {code.type}")
    if not place.is_const:
        call.fail("the place must be a constant name or code")
    prefix = _place_arg(place.const).prefix
    value = call.param(prefix, "text")
    if call.dialect == "postgres":
        sql = f"COALESCE(left({code.sql}, {len(prefix)}) = {value.sql}, FALSE)"
    else:
        sql = f"COALESCE(substr({code.sql}, 1, {len(prefix)}) = {value.sql}, 0)"
    return SqlValue(sql, code.params + value.params, "boolean", False, ())


IN_REGION = Operator(
    "in_region",
    in_region,
    sql=_in_region_sql,
    min_args=2,
    max_args=2,
    returns="boolean",
    doc="A region field lies in a place of China (a name such as 浙江省, or a code).",
)
