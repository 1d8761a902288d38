"""The one place where field permissions will decide what an import may write
and what an export may show.

Users, roles and field permissions arrive with the permissions issue. Until
then every live field can be imported and exported. When they arrive, these
two functions take the user and filter the fields; every import and export
path (HTTP, CLI, jobs) already goes through them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jimu.site import Site
from jimu.store.records import EntityRuntime

__all__ = ["exportable_fields", "importable_fields"]


def importable_fields(site: Site, rt: EntityRuntime, *, user: Any = None) -> list[str]:
    """The fields of ``rt`` that ``user`` may write through an import.

    Fields the kernel computes (formulas, auto-numbers, lookups) are never
    written. Permissions issue: drop the fields the user may not write here.
    """
    return [name for name in rt.fields if name not in rt.computed]


def exportable_fields(
    site: Site, rt: EntityRuntime, fields: Sequence[str], *, user: Any = None
) -> list[str]:
    """The columns of ``fields`` (fields and system columns) that ``user`` may export.

    Fields nobody reads (passwords) are never exported. Permissions issue: drop
    the fields the user may not read here (and refuse the export if the user
    may not export the entity at all).
    """
    return [name for name in fields if name not in rt.secret]
