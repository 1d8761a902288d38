"""What a file is, read from its bytes: the content type by magic numbers, an image's size
from its header.

The type a client declares (a multipart part's ``Content-Type``, the file name)
is never trusted on its own: a page of HTML named ``cat.png`` must not be served
as an image. The name only chooses between types the bytes cannot tell apart
(CSV or plain text; an old Word or Excel file) and never turns unknown bytes
into a specific type. Anything not recognised is ``application/octet-stream``.
Text is never labelled HTML, XML or SVG: it is ``text/plain`` (or CSV, TSV,
Markdown, JSON by the name), so nothing uploaded can run script in a browser.
"""

from __future__ import annotations

import codecs
import io
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "EXTENSION_TYPES",
    "HEAD_BYTES",
    "IMAGE_TYPES",
    "OCTET_STREAM",
    "Sniffed",
    "extension_for",
    "image_size",
    "sniff",
    "text_charset",
]

#: How many leading bytes of a file are kept for sniffing.
HEAD_BYTES = 64 * 1024

OCTET_STREAM = "application/octet-stream"
PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
WEBP = "image/webp"
BMP = "image/bmp"
AVIF = "image/avif"
PDF = "application/pdf"
ZIP = "application/zip"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
OLE = "application/x-ole-storage"

#: Image types every current browser shows in an ``<img>``: an ``image`` field
#: accepts these, and downloads show them inline.
IMAGE_TYPES: frozenset[str] = frozenset({PNG, JPEG, GIF, WEBP, BMP, AVIF})

#: The content type a file name's extension stands for. An ``accept`` entry
#: like ``.pdf`` admits files whose sniffed type is this one.
EXTENSION_TYPES: dict[str, str] = {
    ".png": PNG,
    ".jpg": JPEG,
    ".jpeg": JPEG,
    ".jpe": JPEG,
    ".gif": GIF,
    ".webp": WEBP,
    ".bmp": BMP,
    ".avif": AVIF,
    ".heic": "image/heic",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".ico": "image/x-icon",
    ".psd": "image/vnd.adobe.photoshop",
    ".pdf": PDF,
    ".zip": ZIP,
    ".docx": DOCX,
    ".xlsx": XLSX,
    ".pptx": PPTX,
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".gz": "application/gzip",
    ".7z": "application/x-7z-compressed",
    ".rar": "application/vnd.rar",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".m4a": "audio/mp4",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".avi": "video/x-msvideo",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".md": "text/markdown",
    ".json": "application/json",
    ".exe": "application/x-msdownload",
}

#: The extension a stored file of a type gets on disk (the first listed above).
_DISK_EXTENSIONS: dict[str, str] = {
    kind: extension for extension, kind in reversed(EXTENSION_TYPES.items())
}

#: Text types chosen by the file name (anything else that is text is ``text/plain``).
_TEXT_BY_EXTENSION = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".md": "text/markdown",
    ".json": "application/json",
}
#: Compound-document (OLE2) files: which one is told only by the name.
_OLE_BY_EXTENSION = {
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".msg": "application/vnd.ms-outlook",
}
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"GIF87a", GIF),
    (b"GIF89a", GIF),
    (b"\x1f\x8b\x08", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"ID3", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"8BPS", "image/vnd.adobe.photoshop"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"MZ", "application/x-msdownload"),
)
_RIFF = {b"WEBP": WEBP, b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
#: Control characters that do not occur in text files (NUL among them; tab, line
#: breaks, form feed and escape do occur).
_BINARY_CONTROLS = bytes(range(0, 9)) + b"\x0e\x0f" + bytes(range(0x10, 0x1B)) + b"\x1c\x1d\x1e\x1f"


@dataclass(frozen=True)
class Sniffed:
    """What sniffing found: the content type and, for an image, its size in pixels."""

    content_type: str
    width: int | None = None
    height: int | None = None


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def text_charset(head: bytes, *, complete: bool) -> str | None:
    """The charset ``head`` decodes with (``utf-8``, ``utf-16``, ``gb18030``), or ``None``
    when the bytes are not text.

    ``complete`` says whether ``head`` is the whole file (otherwise a character cut at
    its end is fine).
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.translate(None, _BINARY_CONTROLS) != head:
        return None
    for charset in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(charset)()
        try:
            decoder.decode(head, final=complete)
        except UnicodeDecodeError:
            continue
        return charset
    return None


def _odf_type(head: bytes) -> str | None:
    """An OpenDocument file names its type in a first, stored entry called ``mimetype``."""
    if head[30:38] != b"mimetype" or head[8:10] != b"\x00\x00":
        return None
    size = int.from_bytes(head[18:22], "little")
    start = 30 + int.from_bytes(head[26:28], "little") + int.from_bytes(head[28:30], "little")
    try:
        declared = head[start : start + size].decode("ascii")
    except UnicodeDecodeError:
        return None
    return declared if declared.startswith("application/vnd.oasis.opendocument.") else None


def _zip_type(head: bytes, path: Path | None, complete: bool) -> str:
    odf = _odf_type(head)
    if odf is not None:
        return odf
    source: Path | BinaryIO | None = path
    if source is None and complete:
        source = io.BytesIO(head)
    if source is None:
        return ZIP
    try:
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return ZIP
    if "[Content_Types].xml" in names:
        for prefix, kind in (("word/", DOCX), ("xl/", XLSX), ("ppt/", PPTX)):
            if any(name.startswith(prefix) for name in names):
                return kind
    return ZIP


def _ftyp_type(head: bytes) -> str:
    brand = head[8:12]
    compatible = head[8:64]
    if brand in {b"avif", b"avis"} or (brand == b"mif1" and b"avif" in compatible):
        return AVIF
    if brand in _HEIF_BRANDS:
        return "image/heic"
    if brand == b"qt  ":
        return "video/quicktime"
    if brand in {b"M4A ", b"M4B "}:
        return "audio/mp4"
    return "video/mp4"


def _magic_type(head: bytes, name: str, path: Path | None, complete: bool) -> str | None:
    for signature, kind in _MAGIC:
        if head.startswith(signature):
            return kind
    if head.startswith(b"RIFF") and head[8:12] in _RIFF:
        return _RIFF[head[8:12]]
    if head.startswith(b"BM") and int.from_bytes(head[14:18], "little") in {
        12,
        40,
        52,
        56,
        64,
        108,
        124,
    }:
        return BMP
    if head[4:8] == b"ftyp":
        return _ftyp_type(head)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_type(head, path, complete)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _OLE_BY_EXTENSION.get(_extension(name), OLE)
    if b"%PDF-" in head[:1024]:
        return PDF
    return None


def sniff(head: bytes, name: str, path: Path | None = None, *, complete: bool = False) -> Sniffed:
    """The content type (and an image's size) of a file starting with ``head``.

    ``name`` is the file's name (it tells CSV from plain text), ``path`` where it is
    on disk (a ZIP is opened to tell DOCX and XLSX from other archives; an image's
    size may lie past ``head``). ``complete``: ``head`` is the whole file.
    """
    kind = _magic_type(head, name, path, complete)
    if kind is None:
        if head and text_charset(head, complete=complete) is not None:
            kind = _TEXT_BY_EXTENSION.get(_extension(name), "text/plain")
        else:
            kind = OCTET_STREAM
    if kind not in IMAGE_TYPES:
        return Sniffed(kind)
    size: tuple[int, int] | None
    if path is not None:
        with path.open("rb") as handle:
            size = image_size(handle, kind)
    else:
        size = image_size(io.BytesIO(head), kind)
    if size is None:
        return Sniffed(kind)
    return Sniffed(kind, size[0], size[1])


def extension_for(content_type: str, name: str) -> str:
    """The extension a stored file gets on disk: its type's, else a plain one of its name."""
    known = _DISK_EXTENSIONS.get(content_type)
    if known is not None:
        return known
    extension = _extension(name)
    if 2 <= len(extension) <= 11 and extension[1:].isascii() and extension[1:].isalnum():
        return extension
    return ".bin"


# -- image sizes ----------------------------------------------------------------------


def image_size(handle: BinaryIO, content_type: str) -> tuple[int, int] | None:
    """``(width, height)`` in pixels as the image is shown, read from its header;
    ``None`` when the header cannot be read (a cut or damaged file, AVIF).

    A JPEG's EXIF orientation is applied: a phone photo taken upright is
    reported taller than wide, as browsers show it.
    """
    try:
        handle.seek(0)
        head = handle.read(32)
        size: tuple[int, int] | None = None
        if content_type == PNG and head[12:16] == b"IHDR":
            size = struct.unpack(">II", head[16:24])
        elif content_type == GIF:
            size = struct.unpack("<HH", head[6:10])
        elif content_type == BMP:
            if int.from_bytes(head[14:18], "little") == 12:
                size = struct.unpack("<HH", head[18:22])
            else:
                width, height = struct.unpack("<ii", head[18:26])
                size = (width, abs(height))
        elif content_type == WEBP:
            size = _webp_size(head)
        elif content_type == JPEG:
            size = _jpeg_size(handle)
    except (struct.error, OSError):
        return None
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return int(size[0]), int(size[1])


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and head[20:21] == b"\x2f":
        b0, b1, b2, b3 = head[21:25]
        width = 1 + (((b1 & 0x3F) << 8) | b0)
        height = 1 + (((b3 & 0x0F) << 10) | (b2 << 2) | ((b1 & 0xC0) >> 6))
        return width, height
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(head[24:27], "little")
        height = 1 + int.from_bytes(head[27:30], "little")
        return width, height
    return None


#: Start-of-frame markers, which carry a JPEG's size (not DHT, JPG, DAC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(handle: BinaryIO) -> tuple[int, int] | None:
    handle.seek(2)
    orientation = 1
    for _ in range(10_000):
        if handle.read(1) != b"\xff":
            return None
        marker = handle.read(1)
        while marker == b"\xff":  # fill bytes
            marker = handle.read(1)
        if not marker:
            return None
        code = marker[0]
        if code == 0x01 or 0xD0 <= code <= 0xD8:  # markers without a length
            continue
        if code in (0xD9, 0xDA):  # end of image, start of scan: no frame header before
            return None
        length = int.from_bytes(handle.read(2), "big")
        if length < 2:
            return None
        if code in _SOF:
            frame = handle.read(5)
            height, width = struct.unpack(">HH", frame[1:5])
            return (height, width) if orientation in (5, 6, 7, 8) else (width, height)
        if code == 0xE1 and orientation == 1:
            orientation = _exif_orientation(handle.read(length - 2))
            continue
        handle.seek(length - 2, io.SEEK_CUR)
    return None


def _exif_orientation(segment: bytes) -> int:
    """The EXIF orientation (1 to 8) in an APP1 segment; 1 when there is none."""
    if not segment.startswith(b"Exif\x00\x00"):
        return 1
    tiff = segment[6:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    try:
        (offset,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[offset : offset + 2])
        for index in range(count):
            start = offset + 2 + 12 * index
            tag, kind = struct.unpack(order + "HH", tiff[start : start + 4])
            if tag == 0x0112 and kind == 3:  # Orientation, SHORT
                (value,) = struct.unpack(order + "H", tiff[start + 8 : start + 10])
                return int(value) if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1
