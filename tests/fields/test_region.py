"""region: a province / city / district of China from cpca's dataset, stored as its code."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jimu.fields.china import in_region, regions
from jimu.rules.errors import InvalidArgumentsError
from jimu.site import Site
from tests.fields.helpers import (
    accept,
    assert_bad_definition,
    assert_refused,
    create,
    entity,
    fmt,
    labels,
    parse,
    read,
    reason,
)


def test_the_dataset_is_cpcas() -> None:
    tree = regions()
    assert len(tree.provinces) == 34
    assert tree.by_code["330106"].text() == "浙江省/杭州市/西湖区"
    assert regions() is tree  # loaded once


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("上海市/上海市/浦东新区", "310115"),
        ("浙江省 杭州市 西湖区", "330106"),
        ("浙江省/杭州市/西湖区", "330106"),
        ("浙江省杭州市西湖区", "330106"),
        ("浙江 杭州 西湖", "330106"),
        ("浙江省,杭州市,西湖区", "330106"),
        ("上海市浦东新区", "310115"),
        ("上海 浦东新区", "310115"),
        ("北京市/市辖区/朝阳区", "110105"),
        ("辽宁省 朝阳市 双塔区", "211302"),
        ("重庆市/重庆市/忠县", "500233"),
        ("湖北省/仙桃市", "429004"),
        ("广东省/东莞市", "441900"),
        ("吉林省吉林市船营区", "220204"),
        ("内蒙古 呼和浩特 新城区", "150102"),
        ("330106", "330106"),
        ("330106000000", "330106"),
    ],
)
def test_valid_values_become_codes(given: str, code: str) -> None:
    assert accept("region", given) == code


def test_levels() -> None:
    assert accept("region", "浙江省", level="province") == "330000"
    assert accept("region", "上海市", level="city") == "310000"  # a municipality is a city too
    assert accept("region", "310100", level="city") == "310000"  # 市辖区 stands for 上海市
    assert accept("region", "湖北省 仙桃市", level="city") == "429004"
    assert accept("region", "浙江省", partial=True) == "330000"
    assert accept("region", "香港") == "810000"  # no subdivisions in the dataset
    assert reason("region", "浙江省") == "'浙江省' is not precise enough: choose a district in it"
    assert reason("region", "浙江省/杭州市/西湖区", level="city") == (
        "'浙江省/杭州市/西湖区' is more precise than this field, which records a city"
    )


def test_invalid_values() -> None:
    for bad in (
        "火星",
        "浙江省/上海市",
        "999999",
        "3301",
        "330106001000",
        "浙江省/杭州市/浦东新区",
    ):
        assert "is not a province, city or district of China" in reason("region", bad)
    assert "Expected `str`" in reason("region", 330106)


def test_bad_options(new_site: Callable[..., Site]) -> None:
    assert_bad_definition(
        new_site,
        {"name": "r", "type": "region", "options": {"level": "town"}},
        "fields[0].options.level",
        "level must be one of 'province', 'city', 'district'",
    )


def test_cells() -> None:
    assert parse("region", " 浙江省 杭州市 西湖区 ") == "浙江省 杭州市 西湖区"
    assert parse("region", 330106.0) == "330106"  # a code column read as numbers
    assert parse("region", "") is None
    assert fmt("region", "310115") == "上海市/上海市/浦东新区"
    assert fmt("region", "429004") == "湖北省/仙桃市"
    assert fmt("region", "330000") == "浙江省"
    assert fmt("region", None) is None
    assert accept("region", fmt("region", "220204")) == "220204"


def test_in_region_in_python() -> None:
    assert in_region("330106", "浙江省")
    assert in_region("330106", "浙江 杭州")
    assert in_region("330106", "330100")
    assert not in_region("310115", "浙江省")
    assert in_region("310115", "上海")
    assert not in_region(None, "上海")
    with pytest.raises(InvalidArgumentsError, match="not a province"):
        in_region("330106", "火星")


def test_through_the_api(new_site: Callable[..., Site]) -> None:
    with entity(new_site, [{"name": "area", "type": "region"}]) as client:
        pudong = create(client, {"label": "pudong", "area": "上海市/上海市/浦东新区"})
        assert pudong["area"] == "310115"
        create(client, {"label": "xihu", "area": "浙江省 杭州市 西湖区"})
        create(client, {"label": "ningbo", "area": "浙江 宁波 海曙"})
        create(client, {"label": "code", "area": "330106"})
        create(client, {"label": "none"})
        assert read(client, pudong["id"])["area"] == "310115"
        assert labels(client, {"in_region": [{"var": "area"}, "浙江省"]}) == [
            "xihu",
            "ningbo",
            "code",
        ]
        assert labels(client, {"in_region": [{"var": "area"}, "浙江省/杭州市"]}) == [
            "xihu",
            "code",
        ]
        assert labels(client, {"in_region": [{"var": "area"}, "上海"]}) == ["pudong"]
        assert labels(client, {"starts_with": [{"var": "area"}, "33"]}) == [
            "xihu",
            "ningbo",
            "code",
        ]
        assert labels(client, {"==": [{"var": "area"}, "330106"]}) == ["xihu", "code"]
        assert labels(client, {"!": {"in_region": [{"var": "area"}, "浙江省"]}}) == [
            "pudong",
            "none",
        ]
        bad = client.get(
            "/api/v1/records/item", params={"filter": '{"in_region": [{"var": "area"}, "火星"]}'}
        )
        assert bad.status_code == 422 and "'火星' is not a province" in bad.text
        assert_refused(client, {"area": "浙江省"}, "area", "not precise enough")
        assert_refused(client, {"area": "火星"}, "area", "is not a province, city or district")
