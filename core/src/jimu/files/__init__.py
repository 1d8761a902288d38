"""The site's file store: what ``attachment`` and ``image`` fields refer to.

* :mod:`jimu.files.store`: :class:`FileStore` saves files under the site folder
  (``files/<yyyy>/<mm>/<id><ext>``, written atomically) and keeps their facts
  in the kernel table ``jimu_file``.
* :mod:`jimu.files.sniff`: the content type from the bytes (magic numbers),
  an image's size from its header, without any imaging library.

The HTTP routes are in :mod:`jimu.http.files`, the field types in
:mod:`jimu.fields.files`.
"""

from __future__ import annotations

from jimu.files.sniff import EXTENSION_TYPES, IMAGE_TYPES, Sniffed, sniff
from jimu.files.store import (
    FILE_TABLES,
    FILES_URL,
    FileStore,
    FileTooLarge,
    StoredFile,
    clean_name,
    ensure_tables,
    human_size,
    parse_file_id,
)

__all__ = [
    "EXTENSION_TYPES",
    "FILES_URL",
    "FILE_TABLES",
    "IMAGE_TYPES",
    "FileStore",
    "FileTooLarge",
    "Sniffed",
    "StoredFile",
    "clean_name",
    "ensure_tables",
    "human_size",
    "parse_file_id",
    "sniff",
]
