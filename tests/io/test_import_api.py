"""The import routes: uploads, options, 422s, reports, saved mappings and background jobs."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import TestClient

from jimu.http import io as http_io
from jimu.io import JobRunner, JobStore
from jimu.io.tables import ensure_tables
from jimu.site import Site
from jimu_sdk.testing import site_client
from tests.io.helpers import csv_bytes, run, with_member, xlsx_bytes

ROWS = [["姓名", "手机号码", "积分"], ["王芳", "13800138000", "10"], ["李娜", "13900000000", "20"]]
BAD = [*ROWS, ["张伟", "13700000000", "lots"]]


@pytest.fixture
def site(new_site: Callable[..., Site]) -> Site:
    return with_member(new_site())


def upload(client: TestClient[Any], data: bytes, name: str = "members.csv", **params: Any) -> Any:
    return client.post(
        "/api/v1/records/member/import",
        files={"file": (name, data, "application/octet-stream")},
        data={k: str(v) for k, v in params.items()},
    )


def test_multipart_upload_imports_and_reports(site: Site) -> None:
    with site_client(site) as client:
        response = upload(client, csv_bytes(ROWS, encoding="gbk"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["status"], body["created"], body["encoding"]) == ("succeeded", 2, "gb18030")
        assert body["report_url"] == f"/api/v1/imports/{body['id']}/report"
        assert (
            client.get("/api/v1/records/member", params={"count": "exact"}).json()["page"]["total"]
            == 2
        )
        summary = client.get(f"/api/v1/imports/{body['id']}").json()
        assert (summary["status"], summary["errors_total"], summary["file"]) == (
            "succeeded",
            0,
            "members.csv",
        )


def test_bad_rows_are_a_422_with_a_downloadable_report(site: Site) -> None:
    rows = [
        ["姓名", "手机号码", "积分"],
        ["王芳", "13800138000", "10"],
        ["李娜", "13900000000", "lots"],
    ]
    with site_client(site) as client:
        response = upload(client, xlsx_bytes(rows), "members.xlsx")
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["type"] == "https://jimu.dev/problems/validation-failed"
        assert body["detail"].startswith("1 row has errors; nothing was imported")
        assert body["errors"] == [
            {
                "row": 3,
                "column": "积分",
                "field": "points",
                "value": "lots",
                "reason": "'lots' is not a whole number",
            }
        ]
        report_url = body["import"]["report_url"]
        report = client.get(report_url)
        assert report.status_code == 200
        assert report.headers["content-type"] == "text/csv; charset=utf-8"
        assert "attachment" in report.headers["content-disposition"]
        assert report.content.startswith(b"\xef\xbb\xbf")
        assert report.content.decode("utf-8-sig").splitlines() == [
            "行号,列,字段,值,原因",
            "3,积分,points,lots,'lots' is not a whole number",
        ]
        assert client.get("/api/v1/records/member").json()["data"] == []
        assert client.get("/api/v1/imports/999999/report").status_code == 404


def test_raw_body_and_options_in_the_query(site: Site) -> None:
    with site_client(site) as client:
        response = client.post(
            "/api/v1/records/member/import",
            params={"filename": "m.csv", "valid_rows": "true"},
            content=csv_bytes(BAD),
        )
        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["created"]) == ("partial", 2)
        dry = client.post(
            "/api/v1/records/member/import?dry_run=1&mode=upsert&key=phone",
            content=xlsx_bytes([ROWS[0], ["王芳", 13800138000, 11]]),
            headers={"content-disposition": 'attachment; filename="m.xlsx"'},
        )
        assert dry.status_code == 200, dry.text
        assert (dry.json()["format"], dry.json()["updated"], dry.json()["dry_run"]) == (
            "xlsx",
            1,
            True,
        )
        points = [r["points"] for r in client.get("/api/v1/records/member").json()["data"]]
        assert points == [10, 20]


def test_import_mistakes_are_4xx(site: Site) -> None:
    with site_client(site) as client:
        cases = [
            (upload(client, csv_bytes(ROWS), colour="red"), 422, "colour"),
            (upload(client, csv_bytes(ROWS), mode="merge"), 422, "mode"),
            (upload(client, csv_bytes(ROWS), background="later"), 422, "background"),
            (upload(client, b""), 422, "file"),
            (upload(client, b"PK\x03\x04junk", "x.xlsx"), 422, "file"),
            (upload(client, csv_bytes(ROWS), mapping="{bad json"), 422, "mapping"),
            (upload(client, csv_bytes(ROWS), mapping="never-saved"), 404, None),
            (client.post("/api/v1/records/ghost/import", content=b"a,b"), 404, None),
            (
                client.post(
                    "/api/v1/records/member/import",
                    files={"upload": ("m.csv", csv_bytes(ROWS), "text/csv")},
                ),
                422,
                "upload",
            ),
        ]
        for response, status, field in cases:
            assert response.status_code == status, response.text
            if field is not None:
                assert response.json()["errors"][0]["field"] == field, response.text


def test_saved_mapping_routes(site: Site) -> None:
    with site_client(site) as client:
        url = "/api/v1/records/member/import/mappings/crm"
        saved = client.put(
            url, json={"columns": {"客户名称": "name", "电话": "phone", "备用": None}}
        )
        assert saved.status_code == 200, saved.text
        assert client.get(url).json() == {
            "name": "crm",
            "columns": {"客户名称": "name", "电话": "phone", "备用": None},
        }
        listed = client.get("/api/v1/records/member/import/mappings").json()["data"]
        assert [m["name"] for m in listed] == ["crm"]
        response = upload(
            client, csv_bytes([["客户名称", "电话", "备用"], ["王芳", "1", "x"]]), mapping="crm"
        )
        assert response.status_code == 200 and response.json()["created"] == 1
        assert client.put(url, json={"columns": {"a": "colour"}}).status_code == 422
        assert client.put(url, json={"cols": {}}).status_code == 422
        assert client.delete(url).json() == {"deleted": "crm"}
        assert client.get(url).status_code == 404
        assert client.delete(url).status_code == 404


def wait_for_job(client: TestClient[Any], url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(url).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {url} did not finish")


def test_large_files_run_as_background_jobs(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_io, "BACKGROUND_BYTES", 1000)
    rows = [["姓名", "手机号码", "积分"]] + [
        [f"会员{i}", f"138{i:08d}", str(i)] for i in range(3000)
    ]
    with site_client(site) as client:
        response = upload(client, csv_bytes(rows))
        assert response.status_code == 202, response.text
        job = response.json()["job"]
        assert response.headers["location"] == job["url"] == f"/api/v1/jobs/{job['id']}"
        assert (job["kind"], job["entity"]) == ("import", "member")
        assert job["status"] in ("queued", "running", "succeeded")
        done = wait_for_job(client, job["url"])
        assert done["status"] == "succeeded", done
        assert done["progress"] == {"processed": 3000, "total": 3000, "percent": 100.0}
        assert (done["result"]["status"], done["result"]["created"]) == ("succeeded", 3000)
        assert done["result"]["job_id"] == job["id"]
        assert done["finished_at"] is not None and done["error"] is None
        total = client.get("/api/v1/records/member", params={"count": "exact"}).json()["page"][
            "total"
        ]
        assert total == 3000
        # a job whose rows are refused fails, and its report says why
        failing = upload(client, csv_bytes([*rows[:5], ["x", "1", "many"]]), background="true")
        assert failing.status_code == 202
        failed = wait_for_job(client, failing.json()["job"]["url"])
        assert failed["status"] == "failed"
        assert failed["error"].startswith("5 rows have errors; nothing was imported")
        report = client.get(failed["result"]["report_url"]).content.decode("utf-8-sig")
        assert "another member record already has this value" in report
        assert "'many' is not a whole number" in report
        # small files stay in the request, unless asked otherwise
        small = upload(client, csv_bytes([ROWS[0], ["周杰", "1", "1"]]), background="false")
        assert small.status_code == 200
        assert client.get("/api/v1/jobs/999999").status_code == 404


def test_a_job_whose_process_is_gone_is_reported_interrupted(site: Site) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    dead_pid = int(finished.stdout)

    async def work(opened: Site) -> dict[str, Any]:
        await ensure_tables(opened.db)
        store = JobStore(opened.db)
        job_id = await store.create("import", "member", {})
        await store.update(job_id, status="running", owner=f"{socket.gethostname()}:{dead_pid}")
        mine = await store.create("import", "member", {})
        await store.update(mine, status="running", owner=f"{socket.gethostname()}:{os.getpid()}")
        runner = JobRunner.of(opened)
        assert (await runner.view(mine))["status"] == "failed"  # this process, not running here
        return await runner.view(job_id)

    job = run(site, work)
    assert job["status"] == "failed"
    assert job["error"].startswith("interrupted")


def test_jobs_end_cleanly_when_cancelled(site: Site) -> None:
    async def work(opened: Site) -> dict[str, Any]:
        runner = JobRunner.of(opened)

        async def slow(job_id: int, report: Any) -> Any:
            await asyncio.sleep(30)

        job = await runner.submit("import", "member", {}, slow)
        await asyncio.sleep(0.05)
        await runner.shutdown()
        return await runner.view(job["id"])

    job = run(site, work)
    assert (job["status"], job["error"]) == ("failed", "interrupted: the site was shut down")
