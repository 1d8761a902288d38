"""``jimu import`` and ``jimu export``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from jimu.site import Site
from jimu_cli.main import cli
from tests.io.helpers import csv_bytes, records_of, with_member, xlsx_bytes

ROWS = [["姓名", "手机号码", "积分"], ["王芳", "13800138000", "10"], ["李娜", "13900000000", "20"]]


@pytest.fixture
def site(new_site: Callable[..., Site]) -> Site:
    return with_member(new_site())


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_import_then_export(site: Site, tmp_path: Path) -> None:
    source = tmp_path / "会员.csv"
    source.write_bytes(csv_bytes(ROWS, encoding="gbk"))
    code, out, err = invoke("import", str(site.folder), "member", str(source))
    assert code == 0, err
    assert out.startswith("2 rows imported (2 created) into member from 会员.csv")
    target = tmp_path / "out.xlsx"
    code, out, err = invoke(
        "export", "member", str(target), "--site", str(site.folder), "--sort", "-points"
    )
    assert (code, out) == (0, f"Exported 2 member records to {target}\n"), err
    assert target.read_bytes().startswith(b"PK")
    code, out, _ = invoke(
        "export",
        str(site.folder),
        "member",
        "-",
        "--fields",
        "name",
        "--header",
        "name",
        "--filter",
        json.dumps({">": [{"var": "points"}, 15]}),
    )
    assert code == 0
    assert out.replace("\r\n", "\n") == "\ufeffname\n李娜\n"


def test_bad_rows_exit_1_with_the_rows_and_a_report(site: Site, tmp_path: Path) -> None:
    source = tmp_path / "m.xlsx"
    source.write_bytes(xlsx_bytes([*ROWS, ["张伟", 13700000000, "lots"]]))
    report = tmp_path / "errors.csv"
    code, out, err = invoke(
        "import", str(site.folder), "member", str(source), "--report", str(report)
    )
    assert code == 1
    assert "  row 4, 积分 (points): 'lots' is not a whole number" in err
    assert f"Error report: {report}" in err
    assert err.rstrip().endswith(
        "Error: 1 row has errors; nothing was imported (fix them, or import the valid rows only)"
    )
    assert report.read_text(encoding="utf-8-sig").splitlines()[1] == (
        "4,积分,points,lots,'lots' is not a whole number"
    )
    assert records_of(site) == []
    code, out, err = invoke(
        "import", str(site.folder), "member", str(source), "--valid-rows", "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["status"], summary["created"], summary["failed"]) == ("partial", 2, 1)


def test_modes_dry_run_and_mappings(site: Site, tmp_path: Path) -> None:
    source = tmp_path / "crm.csv"
    source.write_bytes(csv_bytes([["客户", "电话", "积分"], ["王芳", "13800138000", "10"]]))
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"客户": "name", "电话": "phone"}, ensure_ascii=False))
    code, out, err = invoke(
        "import",
        str(site.folder),
        "member",
        str(source),
        "--mapping",
        str(mapping),
        "--save-mapping",
        "crm",
        "--dry-run",
    )
    assert code == 0, err
    assert out.startswith("Dry run: 1 row would be imported (1 created)")
    assert records_of(site) == []
    code, out, err = invoke("import", str(site.folder), "member", str(source), "--mapping", "crm")
    assert code == 0, err
    source.write_bytes(csv_bytes([["客户", "电话", "积分"], ["王芳", "13800138000", "11"]]))
    code, out, err = invoke(
        "import",
        str(site.folder),
        "member",
        str(source),
        "--mapping",
        "crm",
        "--mode",
        "upsert",
        "--key",
        "phone",
    )
    assert code == 0, err
    assert "1 updated" in out
    assert [r["points"] for r in records_of(site)] == [11]


def test_usage_mistakes(site: Site, tmp_path: Path) -> None:
    code, _, err = invoke("import", str(site.folder), "member", str(tmp_path / "missing.csv"))
    assert code == 1 and "cannot read" in err
    code, _, err = invoke("import", "member")
    assert code == 2 and "give [SITE] ENTITY FILE" in err
    source = tmp_path / "m.csv"
    source.write_bytes(csv_bytes(ROWS))
    code, _, err = invoke("import", str(site.folder), "ghost", str(source))
    assert code == 1 and "no entity named 'ghost'" in err
    code, _, err = invoke("import", str(site.folder), "member", str(source), "--mapping", "nope")
    assert code == 1 and "no saved import mapping 'nope'" in err
    code, _, err = invoke("export", str(site.folder), "member", "-", "--filter", "{x")
    assert code == 2 and "not JSON" in err
