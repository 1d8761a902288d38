"""Import and export: CSV and spreadsheets in, CSV and XLSX out, with jobs and reports.

* :func:`import_file` — a file into an entity: header mapping, insert / update /
  upsert, dry run, all or nothing (or only the valid rows), a row-level report.
* :func:`open_export` / :func:`export_records` — a filtered, sorted list out
  as CSV or XLSX, streamed page by page.
* :class:`JobRunner` — imports of large files as background jobs with progress.
* :class:`MappingStore` — saved header-to-field mappings per entity.

The HTTP routes are in :mod:`jimu.http.io`; the commands are ``jimu import``
and ``jimu export``. Field permissions plug in at :mod:`jimu.io.access`.
"""

from jimu.io.export import Export, ExportOptions, export_records, open_export
from jimu.io.importer import ImportOptions, ImportOutcome, ImportStore, Progress, import_file
from jimu.io.jobs import JobOutcome, JobRunner, JobStore
from jimu.io.mapping import MappingStore
from jimu.io.report import report_csv
from jimu.io.sources import Source

__all__ = [
    "Export",
    "ExportOptions",
    "ImportOptions",
    "ImportOutcome",
    "ImportStore",
    "JobOutcome",
    "JobRunner",
    "JobStore",
    "MappingStore",
    "Progress",
    "Source",
    "export_records",
    "import_file",
    "open_export",
    "report_csv",
]
