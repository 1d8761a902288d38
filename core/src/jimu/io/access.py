"""The one place where permissions decide what an import may write and an export may show.

Both ask the permission engine of whoever is acting
(:func:`jimu.auth.current_access`), so the HTTP API, the CLI and background
jobs (which inherit the actor of the request that started them) apply the
same rules as every other data path.
"""

from __future__ import annotations

from collections.abc import Sequence

from jimu.auth import current_access
from jimu.store.records import EntityRuntime

__all__ = ["exportable_fields", "importable_fields"]


def importable_fields(rt: EntityRuntime) -> list[str]:
    """The fields of ``rt`` the acting principal may write through an import.

    Refuses (403) a principal without the ``import`` permission on the
    entity. Fields the kernel computes (formulas, auto-numbers, lookups) are
    never written; fields the principal may not write are not offered, so a
    column mapped to one is reported as unknown.
    """
    access = current_access()
    access.require(rt.name, "import")
    writable = access.writable_fields(rt.name)
    return [
        name
        for name in rt.fields
        if name not in rt.computed and (writable is None or name in writable)
    ]


def exportable_fields(rt: EntityRuntime, fields: Sequence[str]) -> list[str]:
    """The columns of ``fields`` (fields and system columns) the acting principal may export.

    Refuses (403) a principal without the ``export`` permission on the entity.
    Fields nobody reads (passwords) and fields the principal may not read are
    left out.
    """
    access = current_access()
    access.require(rt.name, "export")
    readable = access.readable_fields(rt.name)
    return [
        name for name in fields if name not in rt.secret and (readable is None or name in readable)
    ]
