"""Form metadata: how an entity is laid out for people, with the rules that shape input.

A :class:`FormDef` is pages (tabs, or the steps of a multi-step form) of
sections of fields. Per field it carries label, help, placeholder, a default
(literal or JsonLogic), ``visible_if`` / ``required_if`` / ``read_only_if``
rules and validation rules with messages. The browser runs the rules for
instant feedback; the server runs the same rules on every write made through
the form, and is the authority. An entity can have several forms; one may be
its default, which applies to record writes that name no form.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from jimu.meta import IDENTIFIER_PATTERN, Translatable

__all__ = [
    "FormDef",
    "FormField",
    "FormPage",
    "FormSection",
    "FormValidation",
    "PublicForm",
]

Rule = Any
"""A JsonLogic rule (any JSON value) evaluated over the record being edited."""


class FormValidation(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A rule that must hold (be truthy) for the submission to be accepted."""

    rule: Rule
    message: Translatable
    #: The field the message belongs to (form-level validations only; default: the whole form).
    field: str | None = None


class FormField(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One field placed on a form, with the form's rules for it."""

    field: str
    label: Translatable | None = None
    help: Translatable | None = None
    placeholder: Translatable | None = None
    #: A literal default for new records, or a JsonLogic rule computing it from the other values.
    default: Any = None
    default_rule: Rule = None
    required: bool = False
    visible_if: Rule = None
    required_if: Rule = None
    read_only_if: Rule = None
    read_only: bool = False
    validations: list[FormValidation] = msgspec.field(default_factory=list)
    widget: str | None = None


class FormSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A group of fields laid out in 1 to 4 columns."""

    title: Translatable | None = None
    columns: int = 1
    fields: list[FormField] = msgspec.field(default_factory=list)
    visible_if: Rule = None


class FormPage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A tab of a tabbed form, or a step of a multi-step form."""

    title: Translatable | None = None
    sections: list[FormSection] = msgspec.field(default_factory=list)


class PublicForm(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Anonymous submission settings: rate limit per client address, captcha, thanks."""

    enabled: bool = True
    #: Submissions allowed per client address within ``window_seconds``.
    rate_limit: int = 5
    window_seconds: int = 60
    captcha: bool = False
    success_message: Translatable | None = None


class FormDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A layout of one entity for people, with its rules.

    ``layout`` is ``"tabs"`` (pages are tabs, all submitted together) or
    ``"steps"`` (pages are steps; each can be validated on its own before the
    final submission). ``default`` makes this form apply to record writes of
    its entity that name no form. ``public`` allows anonymous submissions.
    """

    name: str
    entity: str
    label: Translatable | None = None
    description: Translatable | None = None
    layout: Literal["tabs", "steps"] = "tabs"
    pages: list[FormPage] = msgspec.field(default_factory=list)
    validations: list[FormValidation] = msgspec.field(default_factory=list)
    default: bool = False
    public: PublicForm | None = None
    plugin: str | None = None

    def placed(self) -> list[tuple[str, FormField]]:
        """Every placed field with its path in the definition (``pages[0].sections[1].fields[2]``)."""
        found = []
        for p, page in enumerate(self.pages):
            for s, section in enumerate(page.sections):
                for f, placed in enumerate(section.fields):
                    found.append((f"pages[{p}].sections[{s}].fields[{f}]", placed))
        return found

    def step_fields(self, step: int) -> list[str]:
        """The names of the fields on page ``step``."""
        page = self.pages[step]
        return [placed.field for section in page.sections for placed in section.fields]


FORM_NAME_PATTERN = IDENTIFIER_PATTERN
