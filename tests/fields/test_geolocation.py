"""geolocation: {"lat", "lng"} in degrees, JSON storage, geo_within filters."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jimu.fields.cells import CellError
from jimu.fields.geo import geo_within
from jimu.rules.errors import InvalidArgumentsError
from jimu.site import Site
from tests.fields.helpers import (
    accept,
    assert_refused,
    create,
    entity,
    fmt,
    labels,
    parse,
    read,
    reason,
)

BUND = {"lat": 31.2397, "lng": 121.4905}
WEST_LAKE = {"lat": 30.2431, "lng": 120.1503}
SHANGHAI_BOX = [30.6, 120.8, 31.9, 122.2]  # south, west, north, east


def test_valid_values() -> None:
    assert accept("geolocation", BUND) == BUND
    assert accept("geolocation", {"lat": 31, "lng": -121}) == {"lat": 31.0, "lng": -121.0}
    assert accept("geolocation", {"lat": -90, "lng": 180}) == {"lat": -90.0, "lng": 180.0}


def test_invalid_values() -> None:
    assert "Expected `float` <= 90" in reason("geolocation", {"lat": 91, "lng": 0})
    assert "Expected `float` >= -180" in reason("geolocation", {"lat": 0, "lng": -181})
    assert "missing required field `lng`" in reason("geolocation", {"lat": 0})
    assert "Expected `object`" in reason("geolocation", "31.23,121.47")


def test_cells() -> None:
    assert parse("geolocation", "31.23,121.47") == {"lat": 31.23, "lng": 121.47}
    assert parse("geolocation", " 31.23 , 121.47 ") == {"lat": 31.23, "lng": 121.47}
    assert parse("geolocation", "31.23，121.47") == {"lat": 31.23, "lng": 121.47}
    assert parse("geolocation", "(-33.86 151.21)") == {"lat": -33.86, "lng": 151.21}
    assert parse("geolocation", '{"lat": 1, "lng": 2}') == {"lat": 1, "lng": 2}
    assert parse("geolocation", "") is None
    for bad in ("上海", "31.23", "31.23,121.47,5", "{bad"):
        with pytest.raises(CellError):
            parse("geolocation", bad)
    assert fmt("geolocation", {"lat": 31.23, "lng": 121.47}) == "31.23,121.47"
    assert fmt("geolocation", None) is None
    assert parse("geolocation", fmt("geolocation", BUND)) == BUND


def test_geo_within_in_python() -> None:
    assert geo_within(BUND, *SHANGHAI_BOX)
    assert not geo_within(WEST_LAKE, *SHANGHAI_BOX)
    assert not geo_within(None, *SHANGHAI_BOX)
    assert not geo_within({"lat": "x"}, *SHANGHAI_BOX)
    assert geo_within({"lat": 0, "lng": 179.5}, -1, 179, 1, -179)  # across the 180th meridian
    with pytest.raises(InvalidArgumentsError):
        geo_within(BUND, 32, 120, 31, 122)


def test_through_the_api(new_site: Callable[..., Site]) -> None:
    with entity(new_site, [{"name": "where", "type": "geolocation"}]) as client:
        bund = create(client, {"label": "bund", "where": BUND})
        assert bund["where"] == BUND
        create(client, {"label": "lake", "where": WEST_LAKE})
        create(client, {"label": "fiji", "where": {"lat": -17.7, "lng": 179.9}})
        create(client, {"label": "none"})
        assert read(client, bund["id"])["where"] == BUND
        assert labels(client, {"geo_within": [{"var": "where"}, *SHANGHAI_BOX]}) == ["bund"]
        assert labels(client, {"geo_within": [{"var": "where"}, 29, 119, 32, 123]}) == [
            "bund",
            "lake",
        ]
        assert labels(client, {"geo_within": [{"var": "where"}, -20, 179, -15, -179]}) == ["fiji"]
        assert labels(client, {"!": {"geo_within": [{"var": "where"}, *SHANGHAI_BOX]}}) == [
            "lake",
            "fiji",
            "none",
        ]
        assert labels(client, {"missing": "where"}) == ["none"]
        bad = client.get(
            "/api/v1/records/item",
            params={"filter": '{"geo_within": [{"var": "where"}, 32, 120, 31, 122]}'},
        )
        assert bad.status_code == 422 and "south must not be above north" in bad.text
        assert_refused(client, {"where": {"lat": 95, "lng": 0}}, "where.lat", "<= 90")
        assert_refused(client, {"where": "31.2,121.4"}, "where", "Expected `object | null`")
