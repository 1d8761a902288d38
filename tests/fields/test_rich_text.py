"""rich_text: HTML sanitised with nh3 on every write."""

from __future__ import annotations

from collections.abc import Callable

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


def test_sanitising_keeps_formatting_and_removes_scripts() -> None:
    html = (
        '<h2 onclick="x()">新品</h2><p style="color: red; position: fixed">'
        '<strong>加粗</strong> <a href="https://shop.example.cn" target="_blank">店铺</a>'
        '<a href="javascript:alert(1)">坏链接</a></p>'
        "<script>alert('x')</script><style>p{}</style><img src=x onerror=alert(1)>"
        '<table><tr><td colspan="2">单元格</td></tr></table><iframe src="//evil"></iframe>'
    )
    clean = accept("rich_text", html)
    assert "<h2>新品</h2>" in clean
    assert '<p style="color:red">' in clean
    assert "<strong>加粗</strong>" in clean
    assert (
        '<a href="https://shop.example.cn" target="_blank" rel="noopener noreferrer">店铺</a>'
        in clean
    )
    assert '<td colspan="2">单元格</td>' in clean
    for gone in ("script", "alert", "onerror", "onclick", "javascript", "iframe", "position"):
        assert gone not in clean
    assert accept("rich_text", "a < b & c") == "a &lt; b &amp; c"


def test_invalid_values() -> None:
    assert "Expected `str`" in reason("rich_text", 12)
    assert "length <= 10" in reason("rich_text", "x" * 11, max_length=10)


def test_cells() -> None:
    assert parse("rich_text", "  <p>hello</p> ") == "<p>hello</p>"
    assert parse("rich_text", 12.0) == "12"
    assert parse("rich_text", "   ") is None
    assert fmt("rich_text", "<p>hello</p>") == "<p>hello</p>"
    assert fmt("rich_text", None) is None


def test_through_the_api(new_site: Callable[..., Site]) -> None:
    with entity(new_site, [{"name": "body", "type": "rich_text"}]) as client:
        record = create(
            client, {"label": "a", "body": '<p onmouseover="x()">促销<script>1</script></p>'}
        )
        assert record["body"] == "<p>促销</p>"
        assert read(client, record["id"])["body"] == "<p>促销</p>"
        create(client, {"label": "b", "body": "<p><em>新品</em>上架</p>"})
        create(client, {"label": "c"})
        changed = client.patch(
            f"/api/v1/records/item/{record['id']}", json={"body": "<b>改</b><img src=x onerror=1>"}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["body"] == '<b>改</b><img src="x">'
        assert labels(client, {"contains": [{"var": "body"}, "新品"]}) == ["b"]
        assert labels(client, {"missing": "body"}) == ["c"]
        assert_refused(client, {"body": 5}, "body", "Expected `str | null`")
