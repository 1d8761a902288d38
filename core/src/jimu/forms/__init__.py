"""Forms: the server side of a form's rules.

:func:`compile_form` checks a :class:`~jimu.meta.forms.FormDef` against its
entity and compiles every rule once with the site's rule registry.
:meth:`CompiledForm.check` then applies the form to a submission, exactly as
the browser does for instant feedback, and is the authority:

* a field hidden by ``visible_if`` (or by its section's) is not required and
  its submitted value is discarded;
* ``required`` / ``required_if`` demand a value from visible fields;
* ``read_only`` / ``read_only_if`` refuse a change to the field (``read_only_if``
  is judged on the stored record for an update, so a change cannot unlock itself);
* a field's validations run when it is visible and has a value, the form's
  validations always; a falsy result refuses the submission with its message;
* only fields placed on the form may be written through it;
* new records get the form's defaults (literal, or computed by ``default_rule``).

Every refusal is a :class:`~jimu.errors.ValidationFailed` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jimu.errors import FieldProblem, ValidationFailed
from jimu.meta import EntityDef, MetadataError, translate
from jimu.meta.forms import FormDef, FormField, FormValidation
from jimu.rules import CompiledRule, OperatorRegistry, RuleError, truthy

__all__ = ["CompiledForm", "compile_form"]


@dataclass
class _Validation:
    rule: CompiledRule
    message: Any
    field: str | None


@dataclass
class _Field:
    placed: FormField
    page: int
    visible: list[CompiledRule] = field(default_factory=list)
    required_if: CompiledRule | None = None
    read_only_if: CompiledRule | None = None
    default_rule: CompiledRule | None = None
    validations: list[_Validation] = field(default_factory=list)


def _compile(
    registry: OperatorRegistry, rule: Any, path: str, entity: EntityDef
) -> CompiledRule | None:
    if rule is None:
        return None
    try:
        compiled = registry.compile(rule)
    except RuleError as exc:
        raise MetadataError(path, str(exc)) from exc
    known = set(entity.field_names) | {"id", "created_at", "updated_at"}
    unknown = sorted(name for name in compiled.fields_read() if name.split(".", 1)[0] not in known)
    if unknown:
        raise MetadataError(path, f"the rule reads unknown field {unknown[0]!r} of {entity.name}")
    return compiled


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


class CompiledForm:
    """A form ready to check submissions; built by :func:`compile_form`."""

    def __init__(
        self,
        form: FormDef,
        fields: dict[str, _Field],
        validations: list[_Validation],
        entity: EntityDef,
    ) -> None:
        self.definition = form
        self.name = form.name
        self.entity = entity
        self.fields = fields
        self.validations = validations

    def _run(self, rule: CompiledRule, record: Mapping[str, Any], where: str) -> bool:
        try:
            return truthy(rule(dict(record)))
        except RuleError as exc:
            raise ValidationFailed(FieldProblem(where, f"the form's rule failed: {exc}")) from exc

    def check(
        self,
        values: dict[str, Any],
        *,
        before: Mapping[str, Any] | None,
        locale: str,
        step: int | None = None,
    ) -> dict[str, Any]:
        """Apply the form to a submission; return the values to write.

        ``before`` is the stored record for an update (``None`` for a new
        record). ``step`` checks only that page of a multi-step form and the
        result is not meant to be written.
        """
        problems: list[FieldProblem] = []
        foreign = [name for name in values if name not in self.fields]
        if foreign:
            raise ValidationFailed(
                [FieldProblem(name, f"is not on form {self.name!r}") for name in foreign]
            )
        values = dict(values)
        record: dict[str, Any] = dict(before or {})
        record.update(values)
        defaulted: set[str] = set()
        if before is None:
            for name, compiled in self.fields.items():
                if name in values:
                    continue
                if compiled.default_rule is not None:
                    value = compiled.default_rule(dict(record))
                elif compiled.placed.default is not None:
                    value = compiled.placed.default
                else:
                    continue
                values[name] = value
                record[name] = value
                defaulted.add(name)
        for name, compiled in self.fields.items():
            if step is not None and compiled.page != step:
                continue
            placed = compiled.placed
            visible = all(self._run(rule, record, name) for rule in compiled.visible)
            if not visible:
                values.pop(name, None)  # hidden: not required, and nothing is written to it
                continue
            changed = name in values and (before is None or values[name] != before.get(name))
            # an update is judged on the stored record, so a change cannot unlock itself
            state = before if before is not None else record
            read_only = placed.read_only or (
                compiled.read_only_if is not None and self._run(compiled.read_only_if, state, name)
            )
            if read_only and changed and name not in defaulted:
                problems.append(FieldProblem(name, "is read-only on this form"))
                continue
            entity_field = self.entity.field(name)
            required = (
                placed.required
                or (entity_field is not None and entity_field.required)
                or (
                    compiled.required_if is not None
                    and self._run(compiled.required_if, record, name)
                )
            )
            if required and _blank(record.get(name)):
                problems.append(FieldProblem(name, "is required"))
                continue
            if _blank(record.get(name)):
                continue
            for validation in compiled.validations:
                if not self._run(validation.rule, record, name):
                    problems.append(FieldProblem(name, translate(validation.message, locale)))
                    break
        if step is None:
            for validation in self.validations:
                if not self._run(validation.rule, record, validation.field or "$"):
                    problems.append(
                        FieldProblem(validation.field or "$", translate(validation.message, locale))
                    )
        if problems:
            raise ValidationFailed(problems)
        return values


def compile_form(form: FormDef, entity: EntityDef, registry: OperatorRegistry) -> CompiledForm:
    """Check ``form`` against ``entity`` and compile its rules; errors name the path."""
    if form.entity != entity.name:
        raise MetadataError("entity", f"the form is for {form.entity!r}, not {entity.name!r}")
    if not form.pages:
        raise MetadataError("pages", "a form needs at least one page with fields")
    fields: dict[str, _Field] = {}
    for p, page in enumerate(form.pages):
        for s, section in enumerate(page.sections):
            section_path = f"pages[{p}].sections[{s}]"
            if not 1 <= section.columns <= 4:
                raise MetadataError(f"{section_path}.columns", "must be from 1 to 4")
            section_visible = _compile(
                registry, section.visible_if, f"{section_path}.visible_if", entity
            )
            for f, placed in enumerate(section.fields):
                path = f"{section_path}.fields[{f}]"
                if entity.field(placed.field) is None:
                    raise MetadataError(
                        f"{path}.field", f"unknown field {placed.field!r} of {entity.name}"
                    )
                if placed.field in fields:
                    raise MetadataError(f"{path}.field", f"field {placed.field!r} is placed twice")
                compiled = _Field(placed=placed, page=p)
                if section_visible is not None:
                    compiled.visible.append(section_visible)
                visible = _compile(registry, placed.visible_if, f"{path}.visible_if", entity)
                if visible is not None:
                    compiled.visible.append(visible)
                compiled.required_if = _compile(
                    registry, placed.required_if, f"{path}.required_if", entity
                )
                compiled.read_only_if = _compile(
                    registry, placed.read_only_if, f"{path}.read_only_if", entity
                )
                compiled.default_rule = _compile(
                    registry, placed.default_rule, f"{path}.default_rule", entity
                )
                for v, validation in enumerate(placed.validations):
                    rule = _compile(
                        registry, validation.rule, f"{path}.validations[{v}].rule", entity
                    )
                    assert rule is not None
                    compiled.validations.append(_Validation(rule, validation.message, placed.field))
                fields[placed.field] = compiled
    if not fields:
        raise MetadataError("pages", "a form needs at least one field")
    validations = []
    for v, validation in enumerate(form.validations):
        validations.append(
            _form_validation(registry, validation, f"validations[{v}]", entity, fields)
        )
    return CompiledForm(form, fields, validations, entity)


def _form_validation(
    registry: OperatorRegistry,
    validation: FormValidation,
    path: str,
    entity: EntityDef,
    fields: Mapping[str, _Field],
) -> _Validation:
    rule = _compile(registry, validation.rule, f"{path}.rule", entity)
    if rule is None:
        raise MetadataError(f"{path}.rule", "a validation needs a rule")
    if validation.field is not None and validation.field not in fields:
        raise MetadataError(f"{path}.field", f"field {validation.field!r} is not on the form")
    return _Validation(rule, validation.message, validation.field)
