"""The metadata model: plain msgspec Structs that describe a site.

Metadata is data a person can diff. Plugins declare it in code, integrators
and end users add to it at run time through the API, and the kernel turns it
into tables, validators and HTTP routes. Nothing here talks to a database.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = [
    "IDENTIFIER_PATTERN",
    "RESERVED_FIELD_NAMES",
    "EntityDef",
    "FieldDef",
    "IndexDef",
    "MetadataError",
    "PluginInfo",
    "Translatable",
    "translate",
]

#: A translatable text: a plain string, or a map of locale (``zh-CN``, ``en``) to string.
Translatable = str | dict[str, str]

#: Entity, field and index names: lower-case ASCII identifiers, safe as SQL names everywhere.
IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)

#: Columns every entity table has; a field may not take these names.
RESERVED_FIELD_NAMES = frozenset({"id", "created_at", "updated_at"})

#: Names that would collide with the kernel's own tables or with SQL in a confusing way.
_RESERVED_ENTITY_PREFIXES = ("jimu_", "piccolo_", "sqlite_", "pg_")


class MetadataError(ValueError):
    """A piece of metadata is inconsistent; ``path`` says where (``fields[2].type``)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def translate(text: Translatable | None, locale: str, fallback: str = "") -> str:
    """Pick the best string of a translatable text for ``locale``.

    Tries the exact locale, then its language (``zh`` for ``zh-CN``), then
    English, then any translation, then ``fallback``.
    """
    if text is None:
        return fallback
    if isinstance(text, str):
        return text
    if locale in text:
        return text[locale]
    language = locale.split("-", 1)[0]
    for key, value in text.items():
        if key.split("-", 1)[0] == language:
            return value
    if "en" in text:
        return text["en"]
    return next(iter(text.values()), fallback)


class FieldDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One field of an entity: a real column (or columns) of its table.

    ``type`` names a registered field type (``text``, ``integer``, ``link``, ...);
    ``options`` holds what that type needs (``max_length``, ``choices``,
    ``target`` of a link, ``precision``/``scale`` of a decimal).
    """

    name: str
    type: str
    label: Translatable | None = None
    help: Translatable | None = None
    required: bool = False
    unique: bool = False
    indexed: bool = False
    default: Any = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    #: The field's previous name while a rename waits for ``jimu migrate --apply``.
    renamed_from: str | None = None

    def check(self, path: str) -> None:
        """Raise :class:`MetadataError` when the name is not a usable identifier."""
        if not _IDENTIFIER.match(self.name):
            raise MetadataError(
                f"{path}.name",
                f"{self.name!r} is not a valid field name "
                "(lower-case letters, digits and _, starting with a letter, at most 63)",
            )
        if self.name in RESERVED_FIELD_NAMES:
            raise MetadataError(
                f"{path}.name", f"{self.name!r} is reserved for a column every entity has"
            )
        if self.renamed_from is not None and not _IDENTIFIER.match(self.renamed_from):
            raise MetadataError(
                f"{path}.renamed_from", f"{self.renamed_from!r} is not a valid field name"
            )


class IndexDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A database index over one or more fields of an entity."""

    fields: list[str]
    unique: bool = False
    name: str | None = None

    def index_name(self, entity: str) -> str:
        """The index's name in the database (given, or derived from its fields)."""
        return self.name or f"ix_{entity}_{'_'.join(self.fields)}"[:63]


class EntityDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A kind of record (customer, order, ticket): a real table with real columns.

    ``plugin`` names the plugin that declared the entity; ``None`` means the
    site itself created it at run time. ``title_field`` is the field people
    recognise a record by (shown in links and lists).
    """

    name: str
    label: Translatable | None = None
    description: Translatable | None = None
    fields: list[FieldDef] = msgspec.field(default_factory=list)
    indexes: list[IndexDef] = msgspec.field(default_factory=list)
    title_field: str | None = None
    plugin: str | None = None

    def field(self, name: str) -> FieldDef | None:
        """Return the field called ``name``, or ``None``."""
        for field in self.fields:
            if field.name == name:
                return field
        return None

    @property
    def field_names(self) -> list[str]:
        """The names of the entity's fields, in declaration order."""
        return [field.name for field in self.fields]

    def check(self) -> None:
        """Raise :class:`MetadataError` naming the first inconsistency found."""
        if not _IDENTIFIER.match(self.name):
            raise MetadataError(
                "name",
                f"{self.name!r} is not a valid entity name "
                "(lower-case letters, digits and _, starting with a letter, at most 63)",
            )
        if self.name.startswith(_RESERVED_ENTITY_PREFIXES):
            raise MetadataError(
                "name", f"{self.name!r} uses a prefix reserved for the kernel's own tables"
            )
        seen: set[str] = set()
        for position, field in enumerate(self.fields):
            field.check(f"fields[{position}]")
            if field.name in seen:
                raise MetadataError(
                    f"fields[{position}].name", f"field {field.name!r} is defined twice"
                )
            seen.add(field.name)
        for position, index in enumerate(self.indexes):
            if not index.fields:
                raise MetadataError(f"indexes[{position}].fields", "an index needs a field")
            for name in index.fields:
                if name not in seen:
                    raise MetadataError(
                        f"indexes[{position}].fields", f"unknown field {name!r} in index"
                    )
        if self.title_field is not None and self.title_field not in seen:
            raise MetadataError("title_field", f"unknown field {self.title_field!r}")


class PluginInfo(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """What a plugin says about itself: the module-level ``PLUGIN`` of a plugin.

    ``requires`` names other plugins that must be enabled and load first;
    ``kernel`` is a version specifier (PEP 440, e.g. ``">=0.1,<0.2"``) the
    running kernel must satisfy.
    """

    name: str
    version: str = "0.0.0"
    label: Translatable | None = None
    description: Translatable | None = None
    requires: list[str] = msgspec.field(default_factory=list)
    kernel: str = ""
