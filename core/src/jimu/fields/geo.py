"""The geolocation field type and the ``geo_within`` rule operator."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any, ClassVar, TypedDict

import msgspec

from jimu.fields import Storage
from jimu.fields.cells import CellError
from jimu.fields.common import CanonicalType
from jimu.meta import FieldDef, Translatable
from jimu.rules import Operator, SqlCall, SqlValue
from jimu.rules.errors import InvalidArgumentsError

__all__ = ["GEO_WITHIN", "GeoPoint", "GeolocationType", "geo_within"]


class GeoPoint(TypedDict):
    """A point on the map in WGS 84 degrees: ``{"lat": 31.23, "lng": 121.47}``."""

    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lng: Annotated[float, msgspec.Meta(ge=-180, le=180)]


_PAIR = re.compile(r"^\(?\s*([+-]?\d+(?:\.\d+)?)\s*[,，\s]\s*([+-]?\d+(?:\.\d+)?)\s*\)?$")


class GeolocationType(CanonicalType):
    """A point on the map, ``{"lat": .., "lng": ..}`` in degrees (JSON storage).

    Imports read ``"31.23,121.47"`` (latitude first) and exports write it so.
    Filter with ``{"geo_within": [{"var": "field"}, south, west, north, east]}``.
    """

    name = "geolocation"
    storage: ClassVar[Storage] = "json"
    widget = "geolocation"
    label: ClassVar[Translatable] = {"en": "Geolocation", "zh-CN": "地理位置"}

    def input_type(self, field: FieldDef) -> Any:
        return GeoPoint

    def normalize(self, field: FieldDef, value: Any) -> Any:
        return {"lat": float(value["lat"]), "lng": float(value["lng"])}

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        if isinstance(cell, dict):
            return cell
        text = str(cell).strip()
        if text.startswith("{"):
            try:
                return json.loads(text)
            except ValueError:
                raise CellError(f"{cell!r} is not JSON") from None
        match = _PAIR.match(text)
        if not match:
            raise CellError(f"{cell!r} is not a location (write latitude,longitude: 31.23,121.47)")
        return {"lat": float(match[1]), "lng": float(match[2])}

    def format_cell(self, field: FieldDef, value: Any, timezone: dt.tzinfo) -> Any:
        if value is None:
            return None
        return f"{value['lat']},{value['lng']}"

    def filter_operators(self, field: FieldDef) -> tuple[str, ...]:
        return ("geo_within", "missing")


def _box(args: tuple[Any, ...]) -> tuple[float, float, float, float]:
    if len(args) != 4 or any(
        isinstance(arg, bool) or not isinstance(arg, int | float) for arg in args
    ):
        raise InvalidArgumentsError(
            "geo_within needs a location and four numbers: south, west, north, east"
        )
    south, west, north, east = (float(arg) for arg in args)
    if not (-90 <= south <= north <= 90 and -180 <= west <= 180 and -180 <= east <= 180):
        raise InvalidArgumentsError(
            "geo_within: south must not be above north, latitudes within ±90, longitudes ±180"
        )
    return south, west, north, east


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def geo_within(point: Any, *box: Any) -> bool:
    """Whether ``point`` lies in the box ``south, west, north, east`` (edges included).

    A box with ``west > east`` crosses the 180th meridian. A missing or
    malformed point is not within any box.
    """
    south, west, north, east = _box(box)
    if not isinstance(point, dict):
        return False
    if not (_is_number(point.get("lat")) and _is_number(point.get("lng"))):
        return False
    lat, lng = float(point["lat"]), float(point["lng"])
    inside_lng = west <= lng <= east if west <= east else (lng >= west or lng <= east)
    return south <= lat <= north and inside_lng


def _geo_within_sql(call: SqlCall) -> SqlValue:
    point = call.args[0]
    if point.type != "json":
        call.fail(f"needs a geolocation field, not {point.type}")
    if not all(arg.is_const for arg in call.args[1:]):
        call.fail("the box must be four constant numbers")
    south, west, north, east = _box(tuple(arg.const for arg in call.args[1:]))
    if call.dialect == "postgres":
        lat = f"(CASE WHEN jsonb_typeof({point.sql}) = 'object' THEN ({point.sql}->>'lat')::float8 END)"
        lng = f"(CASE WHEN jsonb_typeof({point.sql}) = 'object' THEN ({point.sql}->>'lng')::float8 END)"
        lat_params = point.params * 2
        lng_params = point.params * 2
        false = "FALSE"
    else:
        lat = f"(CASE WHEN json_type({point.sql}) = 'object' THEN json_extract({point.sql}, '$.lat') END)"
        lng = f"(CASE WHEN json_type({point.sql}) = 'object' THEN json_extract({point.sql}, '$.lng') END)"
        lat_params = point.params * 2
        lng_params = point.params * 2
        false = "0"
    bounds = [call.param(number, "float") for number in (south, north, west, east)]
    joiner = "AND" if west <= east else "OR"
    sql = (
        f"COALESCE(({lat} >= {bounds[0].sql} AND {lat} <= {bounds[1].sql} AND "
        f"({lng} >= {bounds[2].sql} {joiner} {lng} <= {bounds[3].sql})), {false})"
    )
    params = (
        *lat_params,
        *bounds[0].params,
        *lat_params,
        *bounds[1].params,
        *lng_params,
        *bounds[2].params,
        *lng_params,
        *bounds[3].params,
    )
    return SqlValue(sql, params, "boolean", False, ())


GEO_WITHIN = Operator(
    "geo_within",
    geo_within,
    sql=_geo_within_sql,
    min_args=5,
    max_args=5,
    returns="boolean",
    doc="A geolocation lies in the box south, west, north, east (degrees).",
)
