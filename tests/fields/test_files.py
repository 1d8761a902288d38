"""attachment and image: the site's file store, its HTTP routes, and the two field types."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from openapi_spec_validator import validate as validate_openapi

from jimu.errors import ValidationFailed
from jimu.fields.cells import CellError
from jimu.fields.files import AttachmentType, ImageType, resolve_files
from jimu.files import FileStore, clean_name, human_size, parse_file_id, sniff
from jimu.files.sniff import DOCX, XLSX
from jimu.site import Site
from jimu_sdk.testing import site_client
from tests.fields.helpers import (
    PROBLEM,
    accept,
    assert_bad_definition,
    assert_refused,
    create,
    definition,
    fmt,
    labels,
    parse,
    read,
    reason,
)

# -- files the tests make ----------------------------------------------------------------


def png(width: int, height: int) -> bytes:
    """A real (tiny, black) PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg(width: int, height: int, *, orientation: int | None = None, padding: int = 0) -> bytes:
    """A JPEG's markers: EXIF orientation, ``padding`` bytes of APP2 before the frame header."""
    data = b"\xff\xd8"
    if orientation is not None:
        ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
        exif = b"Exif\x00\x00" + b"MM\x00*" + struct.pack(">I", 8) + ifd + struct.pack(">I", 0)
        data += b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    while padding > 0:
        size = min(padding, 60000)
        data += b"\xff\xe2" + struct.pack(">H", size + 2) + b"\x00" * size
        padding -= size
    data += b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return data + b"\xff\xda\x00\x08\x01\x01\x00\x00?\x00" + b"\x00" * 16 + b"\xff\xd9"


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def webp(width: int, height: int, kind: str) -> bytes:
    if kind == "VP8X":
        body = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    elif kind == "VP8L":
        bits = (width - 1) | ((height - 1) << 14)
        body = b"\x2f" + bits.to_bytes(4, "little")
    else:
        body = b"\x00\x00\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    chunk = kind.ljust(4).encode() + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def bmp(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, -height, 1, 24, 0, 0, 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + len(info), 0, 0, 54) + info


def office(part: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(part, "<x/>")
    return buffer.getvalue()


PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
HTML = b"<html><script>alert(1)</script></html>"


# -- sniffing and names ---------------------------------------------------------------


def test_the_content_type_comes_from_the_bytes() -> None:
    cases: list[tuple[bytes, str, str]] = [
        (png(3, 2), "x", "image/png"),
        (jpeg(4, 3), "x.bin", "image/jpeg"),
        (gif(5, 6), "x", "image/gif"),
        (webp(7, 8, "VP8X"), "x", "image/webp"),
        (bmp(9, 10), "x", "image/bmp"),
        (PDF, "contract.txt", "application/pdf"),
        (office("xl/workbook.xml"), "report.zip", XLSX),
        (office("word/document.xml"), "letter", DOCX),
        (office("other.xml")[:30], "broken.zip", "application/zip"),
        ("名称,数量\n茶,1\n".encode("gbk"), "货品.csv", "text/csv"),
        ("名称,数量\n茶,1\n".encode(), "货品.txt", "text/plain"),
        (HTML, "cat.png", "text/plain"),  # text named like an image is text, never HTML
        (b"<svg onload=alert(1)/>", "x.svg", "text/plain"),
        (bytes(range(256)), "x.png", "application/octet-stream"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100,
            "old.xls",
            "application/vnd.ms-excel",
        ),
    ]
    for data, name, expected in cases:
        assert sniff(data, name, complete=True).content_type == expected, (name, expected)


def test_image_sizes_are_read_from_the_header(tmp_path: Path) -> None:
    assert sniff(png(3, 2), "a").width == 3
    for data, size in [
        (png(640, 480), (640, 480)),
        (gif(5, 6), (5, 6)),
        (bmp(9, 10), (9, 10)),
        (webp(7, 8, "VP8X"), (7, 8)),
        (webp(300, 200, "VP8L"), (300, 200)),
        (webp(16383, 2, "VP8 "), (16383, 2)),
        (jpeg(400, 300), (400, 300)),
        (jpeg(400, 300, orientation=6), (300, 400)),  # taken upright on a phone
        (jpeg(400, 300, orientation=1), (400, 300)),
    ]:
        found = sniff(data, "x", complete=True)
        assert (found.width, found.height) == size, found
    # the frame header past the sniffed head: read from the file on disk
    big = jpeg(1920, 1080, padding=150_000)
    path = tmp_path / "big.jpg"
    path.write_bytes(big)
    assert sniff(big[:65536], "big.jpg", path).width == 1920
    # a cut image is still an image, without a size
    cut = sniff(png(3, 2)[:20], "x", complete=True)
    assert (cut.content_type, cut.width, cut.height) == ("image/png", None, None)


def test_names_ids_and_sizes() -> None:
    assert clean_name("C:\\fakepath\\合同.pdf") == "合同.pdf"
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("a\x00b\n.txt") == "ab.txt"
    assert clean_name("") == clean_name("..") == clean_name(None) == "file"
    long = clean_name("x" * 300 + ".pdf")
    assert len(long) == 255 and long.endswith(".pdf")
    file_id = "3F2A0B1C4D5E6F708192A3B4C5D6E7F8"
    assert parse_file_id(file_id) == file_id.lower()
    assert parse_file_id("3f2a0b1c-4d5e-6f70-8192-a3b4c5d6e7f8") == file_id.lower()
    assert parse_file_id("3f2a") is None and parse_file_id("../x") is None
    assert human_size(1) == "1 byte"
    assert human_size(800) == "800 bytes"
    assert human_size(1536) == "1.5 KB"
    assert human_size(5 * 1024 * 1024) == "5 MB"


# -- the types without a site -----------------------------------------------------------

FILE_ID = "3f2a0b1c4d5e6f708192a3b4c5d6e7f8"
OTHER_ID = "0123456789abcdef0123456789abcdef"


def test_valid_values() -> None:
    url = f"/api/v1/files/{FILE_ID}"
    assert accept("attachment", [{"id": FILE_ID}]) == [{"id": FILE_ID, "url": url}]
    # the dashed form, upper case, repeats, and what the API returned are all fine
    assert accept(
        "attachment",
        [
            {"id": "3F2A0B1C-4D5E-6F70-8192-A3B4C5D6E7F8"},
            {"id": OTHER_ID, "name": "a.pdf", "size": 3, "content_type": "application/pdf"},
            {"id": FILE_ID},
        ],
    ) == [
        {"id": FILE_ID, "url": url},
        {
            "id": OTHER_ID,
            "name": "a.pdf",
            "size": 3,
            "content_type": "application/pdf",
            "url": f"/api/v1/files/{OTHER_ID}",
        },
    ]
    image = {"id": FILE_ID, "name": "a.png", "width": 3, "height": 2, "url": "ignored"}
    assert accept("image", [image]) == [
        {"id": FILE_ID, "name": "a.png", "url": url, "width": 3, "height": 2}
    ]
    assert AttachmentType().normalize(definition("attachment"), []) is None  # no files: missing


def test_invalid_values() -> None:
    assert "is not a file id" in reason("attachment", [{"id": "photo.png"}])
    assert "Expected `array`" in reason("attachment", {"id": FILE_ID})
    assert "missing required field `id`" in reason("attachment", [{"name": "a.png"}])
    assert "Expected `int`" in reason("attachment", [{"id": FILE_ID, "size": "3"}])
    two = [{"id": FILE_ID}, {"id": OTHER_ID}]
    assert reason("image", two) == "has 2 images; at most 1 is allowed"
    assert reason("attachment", two, max_count=1) == "has 2 files; at most 1 is allowed"
    assert accept("attachment", two, max_count=2)
    assert accept("image", [{"id": FILE_ID}, {"id": FILE_ID}]) == [
        {"id": FILE_ID, "url": f"/api/v1/files/{FILE_ID}"}
    ]
    required = msgspec.structs.replace(definition("image"), required=True)
    assert ImageType().validate(required, []) == "needs at least one image"


def test_cells() -> None:
    assert parse("attachment", "") is None and parse("image", None) is None
    for cell in ("合同.pdf", f'[{{"id": "{FILE_ID}"}}]'):
        with pytest.raises(CellError, match="upload them through the API"):
            parse("attachment", cell)
    value = [{"id": FILE_ID, "name": "合同.pdf"}, {"id": OTHER_ID, "name": "报价.xlsx"}]
    assert fmt("attachment", value) == "合同.pdf, 报价.xlsx"
    assert fmt("image", [{"id": FILE_ID}]) == FILE_ID
    assert fmt("image", None) is None
    assert AttachmentType().filter_operators(definition("attachment")) == ("missing",)


@pytest.mark.parametrize(
    ("field", "path", "words"),
    [
        ({"type": "attachment", "options": {"max_count": 0}}, "max_count", "from 1 to 100"),
        ({"type": "image", "options": {"max_count": 101}}, "max_count", "from 1 to 100"),
        ({"type": "attachment", "options": {"max_size": "5MB"}}, "max_size", "whole number"),
        ({"type": "attachment", "options": {"max_size": 0}}, "max_size", "at least 1"),
        ({"type": "attachment", "options": {"accept": "pdf"}}, "accept", "a list"),
        ({"type": "attachment", "options": {"accept": []}}, "accept", "a list"),
        ({"type": "attachment", "options": {"accept": ["pdf"]}}, "accept[0]", "extension"),
        ({"type": "attachment", "options": {"accept": [".PDF"]}}, "accept[0]", "lower case"),
        ({"type": "image", "options": {"accept": [".pdf"]}}, "accept[0]", "not an image"),
        ({"type": "image", "options": {"accept": ["image/tiff"]}}, "accept[0]", "not an image"),
        ({"type": "image", "options": {"accept": ["*/*"]}}, "accept[0]", "content type"),
    ],
)
def test_bad_options_are_refused(
    field: dict[str, Any], path: str, words: str, new_site: Callable[..., Site]
) -> None:
    assert_bad_definition(new_site, {"name": "f", **field}, f"fields[0].options.{path}", words)


# -- the store through the API ----------------------------------------------------------


def upload(client: Any, data: bytes, name: str, declared: str = "text/html") -> dict[str, Any]:
    """Upload ``data`` as multipart (with a lying content type); return the ref (201)."""
    response = client.post("/api/v1/files", files={"file": (name, data, declared)})
    assert response.status_code == 201, response.text
    ref: dict[str, Any] = response.json()
    assert response.headers["location"] == ref["url"] == f"/api/v1/files/{ref['id']}"
    return ref


def rows(client: Any, site: Site, sql: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = client.blocking_portal.call(site.db.fetch, sql)
    return result


def test_upload_multipart_and_raw(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        photo = upload(client, png(64, 48), "C:\\fakepath\\门店.png")
        assert {key: photo[key] for key in ("name", "size", "content_type", "width", "height")} == {
            "name": "门店.png",
            "size": len(png(64, 48)),
            "content_type": "image/png",  # not the text/html the client claimed
            "width": 64,
            "height": 48,
        }
        assert len(photo["id"]) == 32
        raw = client.post(
            "/api/v1/files",
            params={"name": "合同.pdf"},
            content=PDF,
            headers={"content-type": "image/png"},
        )
        assert raw.status_code == 201, raw.text
        contract = raw.json()
        assert (contract["name"], contract["content_type"], contract["size"]) == (
            "合同.pdf",
            "application/pdf",
            len(PDF),
        )
        assert "width" not in contract
        named = client.post(
            "/api/v1/files",
            content=office("xl/workbook.xml"),
            headers={"content-disposition": "attachment; filename*=UTF-8''%E6%8A%A5%E4%BB%B7.xlsx"},
        )
        assert named.status_code == 201, named.text
        assert (named.json()["name"], named.json()["content_type"]) == ("报价.xlsx", XLSX)
        unnamed = client.post("/api/v1/files", content=b"hello")
        assert (unnamed.json()["name"], unnamed.json()["content_type"]) == ("file", "text/plain")
        disguised = upload(client, HTML, "cat.png", "image/png")
        assert disguised["content_type"] == "text/plain"
        # on disk under files/<yyyy>/<mm>/, named by id; the facts in jimu_file
        stored = rows(client, site, "SELECT id, path, sha256 FROM jimu_file ORDER BY created_at")
        assert len(stored) == 5
        first = stored[0]
        assert first["id"] == photo["id"]
        assert (site.folder / "files" / first["path"]).read_bytes() == png(64, 48)
        year, month, filename = first["path"].split("/")
        assert len(year) == 4 and len(month) == 2 and filename == f"{photo['id']}.png"
        assert list((site.folder / "files" / ".tmp").iterdir()) == []
        # the same bytes again: a new id and name, one copy on disk
        again = upload(client, png(64, 48), "copy.png")
        assert again["id"] != photo["id"] and again["name"] == "copy.png"
        paths = rows(
            client,
            site,
            f"SELECT path FROM jimu_file WHERE id IN ('{photo['id']}', '{again['id']}')",
        )
        assert len({row["path"] for row in paths}) == 1


def test_bad_uploads(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        for response, field, words in [
            (client.post("/api/v1/files", content=b""), "file", "is empty"),
            (
                client.post("/api/v1/files", files={"file": ("a.txt", b"", "text/plain")}),
                "file",
                "is empty",
            ),
            (client.post("/api/v1/files", data={"name": "x"}, files={}), "file", ""),
            (
                client.post("/api/v1/files", files={"other": ("a.txt", b"x", "text/plain")}),
                "other",
                "form field 'file'",
            ),
            (
                client.post(
                    "/api/v1/files",
                    files=[
                        ("file", ("a.txt", b"a", "text/plain")),
                        ("file", ("b.txt", b"b", "text/plain")),
                    ],
                ),
                "file",
                "one file per request",
            ),
            (
                client.post("/api/v1/files", files={"file": ("", b"abc", "text/plain")}),
                "file",
                "is not a file",
            ),
            (
                client.post("/api/v1/files", params={"folder": "x"}, content=b"x"),
                "folder",
                "unknown parameter",
            ),
        ]:
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith(PROBLEM)
            errors = response.json()["errors"]
            assert errors[0]["field"] == field and words in errors[0]["reason"], errors
        assert rows(client, site, "SELECT id FROM jimu_file") == []


def test_too_large_is_a_413(new_site: Callable[..., Site]) -> None:
    site = new_site()
    site.config = msgspec.structs.replace(site.config, max_body_bytes=1000)
    with site_client(site) as client:
        assert (
            client.post("/api/v1/files", params={"name": "ok.bin"}, content=b"x" * 1000).status_code
            == 201
        )
        for response in (
            client.post("/api/v1/files", params={"name": "big.bin"}, content=b"x" * 1001),
            client.post("/api/v1/files", files={"file": ("big.png", png(40, 40) + b"\x00" * 2000)}),
        ):
            assert response.status_code == 413, response.text
            assert response.headers["content-type"].startswith(PROBLEM)
            problem = response.json()
            assert "larger than 1000 bytes" in problem["detail"] and problem["limit"] == 1000
        assert len(rows(client, site, "SELECT id FROM jimu_file")) == 1
        assert list((site.folder / "files" / ".tmp").iterdir()) == []


def test_the_store_refuses_past_max_size_and_leaves_nothing(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        store = FileStore.of(site)

        async def stream() -> Any:
            for _ in range(5):
                yield b"y" * 400

        async def save() -> None:
            await store.save(stream(), "big.txt", max_size=1000)

        with pytest.raises(Exception, match="larger than 1000 bytes") as caught:
            client.blocking_portal.call(save)
        assert getattr(caught.value, "status", None) == 413
        assert list((site.folder / "files" / ".tmp").iterdir()) == []
        saved = client.blocking_portal.call(store.save, b"abc", "a.txt")
        assert client.blocking_portal.call(store.get, saved.id) == saved
        opened, chunks = client.blocking_portal.call(store.open, saved.id)

        async def collect() -> bytes:
            return b"".join([chunk async for chunk in chunks])

        assert opened == saved and client.blocking_portal.call(collect) == b"abc"


def test_download(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        photo = upload(client, png(8, 8), "门店.png")
        contract = upload(client, PDF, "合同 2024.pdf")
        csv = upload(client, "名称,数量\n茶,1\n".encode("gbk"), "货品.csv")
        shown = client.get(photo["url"])
        assert shown.status_code == 200
        assert shown.content == png(8, 8)
        assert shown.headers["content-type"] == "image/png"
        assert shown.headers["content-disposition"].startswith("inline;")
        assert "filename*=UTF-8''%E9%97%A8%E5%BA%97.png" in shown.headers["content-disposition"]
        assert shown.headers["x-content-type-options"] == "nosniff"
        assert "immutable" in shown.headers["cache-control"]
        etag = shown.headers["etag"]
        cached = client.get(photo["url"], headers={"If-None-Match": etag})
        assert cached.status_code == 304 and cached.content == b""
        saved = client.get(contract["url"])
        assert saved.content == PDF
        assert saved.headers["content-type"] == "application/pdf"
        assert saved.headers["content-disposition"] == (
            "attachment; filename=\"__ 2024.pdf\"; filename*=UTF-8''%E5%90%88%E5%90%8C%202024.pdf"
        )
        text = client.get(csv["url"])
        assert text.headers["content-type"] == "text/csv; charset=gb18030"
        assert text.headers["content-disposition"].startswith("attachment;")
        assert text.content.decode("gb18030") == "名称,数量\n茶,1\n"
        info = client.get(f"{photo['url']}/info")
        assert info.status_code == 200 and info.json() == photo
        # the dashed form of an id works too
        dashed = "-".join(
            [
                photo["id"][:8],
                photo["id"][8:12],
                photo["id"][12:16],
                photo["id"][16:20],
                photo["id"][20:],
            ]
        )
        assert client.get(f"/api/v1/files/{dashed}").content == png(8, 8)


def test_unknown_files_are_404(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        for path in (
            f"/api/v1/files/{FILE_ID}",
            "/api/v1/files/nope",
            f"/api/v1/files/{FILE_ID}/info",
        ):
            response = client.get(path)
            assert response.status_code == 404, response.text
            assert response.headers["content-type"].startswith(PROBLEM)
            assert "no file with id" in response.json()["detail"]
        lost = upload(client, PDF, "lost.pdf")
        stored = rows(client, site, "SELECT path FROM jimu_file")
        (site.folder / "files" / stored[0]["path"]).unlink()
        gone = client.get(lost["url"])
        assert gone.status_code == 404 and "missing" in gone.json()["detail"]


# -- records with files -----------------------------------------------------------------

FIELDS = [
    {"name": "label", "type": "text"},
    {"name": "photo", "type": "image"},
    {
        "name": "gallery",
        "type": "image",
        "options": {"max_count": 3, "accept": ["image/png", ".jpg"]},
    },
    {
        "name": "docs",
        "type": "attachment",
        "options": {"max_size": 1024, "accept": [".pdf", "text/*"]},
    },
]


@contextmanager
def shop(new_site: Callable[..., Site]) -> Iterator[tuple[Any, Site]]:
    """A client and site with an ``item`` entity of file fields."""
    site = new_site()
    with site_client(site) as client:
        response = client.post("/api/v1/meta/entities", json={"name": "item", "fields": FIELDS})
        assert response.status_code == 201, response.text
        yield client, site


def test_a_record_with_files_round_trips(new_site: Callable[..., Site]) -> None:
    with shop(new_site) as (client, site):
        photo = upload(client, png(64, 48), "门店.png")
        contract = upload(client, PDF, "合同.pdf")
        notes = upload(client, "备注".encode(), "备注.txt")
        record = create(
            client, {"label": "茶", "photo": [photo], "docs": [contract, notes, contract]}
        )
        assert record["photo"] == [photo]
        assert record["docs"] == [contract, notes]
        assert read(client, record["id"]) == record
        patched = client.patch(f"/api/v1/records/item/{record['id']}", json={"docs": [notes]})
        assert patched.status_code == 200 and patched.json()["docs"] == [notes]
        cleared = client.patch(f"/api/v1/records/item/{record['id']}", json={"photo": []})
        assert cleared.status_code == 200 and cleared.json()["photo"] is None
        # the URL is not stored: it is where the API serves the file today
        raw = rows(client, site, "SELECT docs FROM item")[0]["docs"]
        stored = json.loads(raw) if isinstance(raw, str) else raw
        assert stored == [{key: value for key, value in notes.items() if key != "url"}]
        export = client.get("/api/v1/records/item/export", params={"format": "csv"})
        assert export.status_code == 200
        assert "备注.txt" in export.content.decode("utf-8-sig")
        # imports: a blank cell is no files, anything else is refused with the row
        imported = client.post(
            "/api/v1/records/item/import",
            params={"filename": "items.csv"},
            content="label,photo\n空,\n有,门店.jpg\n".encode(),
        )
        assert imported.status_code == 422, imported.text
        assert [(e["row"], e["field"]) for e in imported.json()["errors"]] == [(3, "photo")]
        assert "upload them through the API" in imported.json()["errors"][0]["reason"]
        fine = client.post(
            "/api/v1/records/item/import",
            params={"filename": "items.csv"},
            content="label,photo\n空,\n".encode(),
        )
        assert fine.status_code == 200 and fine.json()["created"] == 1, fine.text
        schema = client.get("/schema").json()
        validate_openapi(schema)
        photo = schema["components"]["schemas"]["ItemCreate"]["properties"]["photo"]
        assert photo["anyOf"][0]["items"] == {"$ref": "#/components/schemas/FileRef"}


def test_missing_filters_records_without_files(new_site: Callable[..., Site]) -> None:
    with shop(new_site) as (client, _):
        photo = upload(client, png(2, 2), "a.png")
        create(client, {"label": "with", "photo": [photo]})
        create(client, {"label": "empty", "photo": []})
        create(client, {"label": "none"})
        assert labels(client, {"missing": ["photo"]}) == ["empty", "none"]
        assert labels(client, {"!": {"missing": ["photo"]}}) == ["with"]


def test_the_api_refuses_bad_shapes_and_counts(new_site: Callable[..., Site]) -> None:
    with shop(new_site) as (client, _):
        assert_refused(client, {"photo": [{"id": "x.png"}]}, "photo", "is not a file id")
        assert_refused(client, {"photo": [{"name": "a.png"}]}, "photo[0].id", "is required")
        assert_refused(client, {"photo": {"id": FILE_ID}}, "photo", "Expected `array | null`")
        assert_refused(
            client, {"photo": [{"id": FILE_ID}, {"id": OTHER_ID}]}, "photo", "at most 1 is allowed"
        )
        four = [{"id": f"{n:032x}"} for n in range(1, 5)]
        assert_refused(client, {"gallery": four}, "gallery", "has 4 images; at most 3 are allowed")


def test_limits_are_checked_against_the_store(new_site: Callable[..., Site]) -> None:
    with shop(new_site) as (client, site):
        photo = upload(client, png(4, 4), "a.png")
        shot = upload(client, jpeg(4, 3), "b.jpg")
        animated = upload(client, gif(2, 2), "c.gif")
        contract = upload(client, PDF, "合同.pdf")
        big = upload(client, PDF + b"%" * 2048, "大合同.pdf")
        just_over = upload(client, PDF + b"%" * (1030 - len(PDF)), "b.pdf")
        sheet = upload(client, office("xl/workbook.xml"), "报价.xlsx")

        def check(values: dict[str, Any]) -> dict[str, Any]:
            result: dict[str, Any] = client.blocking_portal.call(
                resolve_files, site, "item", values
            )
            return result

        def refused(values: dict[str, Any]) -> list[dict[str, str]]:
            with pytest.raises(ValidationFailed) as caught:
                check(values)
            assert caught.value.status == 422
            return [dict(error) for error in caught.value.errors]

        # the store's facts replace what the client claimed
        lied = {**photo, "name": "x.exe", "size": 1, "content_type": "image/gif"}
        assert check({"photo": [lied], "label": "x"}) == {"photo": [photo], "label": "x"}
        assert check({"gallery": [{"id": photo["id"]}, {"id": shot["id"]}]})["gallery"] == [
            photo,
            shot,
        ]
        assert check({"docs": [{"id": contract["id"]}]})["docs"] == [contract]
        assert check({"photo": None}) == {"photo": None}
        assert refused({"photo": [{"id": FILE_ID}]}) == [
            {
                "field": "photo",
                "reason": f"no file with id '{FILE_ID}'; upload it first (POST /api/v1/files)",
            }
        ]
        assert refused({"photo": [{"id": contract["id"]}]}) == [
            {
                "field": "photo",
                "reason": "'合同.pdf' is application/pdf, not an image "
                "(PNG, JPEG, GIF, WebP, BMP or AVIF)",
            }
        ]
        assert refused({"gallery": [{"id": animated["id"]}]}) == [
            {
                "field": "gallery",
                "reason": "'c.gif' is image/gif; this field accepts image/png, .jpg",
            }
        ]
        assert refused({"docs": [{"id": big["id"]}]}) == [
            {"field": "docs", "reason": "'大合同.pdf' is 2 KB; at most 1 KB is allowed"}
        ]
        assert refused({"docs": [{"id": just_over["id"]}]}) == [
            {"field": "docs", "reason": "'b.pdf' is 1030 bytes; at most 1024 bytes is allowed"}
        ]
        # every bad file of every field at once
        errors = refused(
            {"docs": [{"id": sheet["id"]}, {"id": photo["id"]}], "photo": [{"id": OTHER_ID}]}
        )
        assert [error["field"] for error in errors] == ["photo", "docs", "docs"]
        assert f"is {XLSX}; this field accepts .pdf, text/*" in errors[1]["reason"]
        # the type's own hook, as the repository calls it for a bulk write
        image_field = site.entity("item").field("photo")
        assert image_field is not None
        with pytest.raises(ValidationFailed) as caught:
            client.blocking_portal.call(
                ImageType().resolve,
                image_field,
                [
                    ("create[0].photo", [{"id": photo["id"]}]),
                    ("create[1].photo", [{"id": contract["id"]}]),
                ],
                site,
            )
        assert [error["field"] for error in caught.value.errors] == ["create[1].photo"]


def test_the_api_checks_files_against_the_store(
    new_site: Callable[..., Site],
) -> None:
    with shop(new_site) as (client, _):
        photo = upload(client, png(4, 4), "a.png")
        contract = upload(client, PDF, "合同.pdf")
        record = create(client, {"label": "x", "photo": [{"id": photo["id"]}]})
        assert record["photo"] == [photo]  # completed from the store
        assert_refused(client, {"photo": [{"id": FILE_ID}]}, "photo", "no file with id")
        assert_refused(client, {"photo": [{"id": contract["id"]}]}, "photo", "not an image")
        assert_refused(
            client, {"docs": [{"id": photo["id"]}]}, "docs", "this field accepts .pdf, text/*"
        )
        response = client.patch(
            f"/api/v1/records/item/{record['id']}", json={"photo": [{"id": contract["id"]}]}
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "photo"
        assert read(client, record["id"])["photo"] == [photo]
