"""Message and parameter templates: Jinja2 in its sandbox, over a run's data.

``Hi {{ customer.nickname }}`` reads the record under its entity's name;
``record``, ``trigger`` and ``steps`` (results of earlier steps) are there
too. Templates cannot reach Python internals (the sandbox refuses), and a
syntax error is found when the automation is saved, not when it runs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["check_template", "render", "render_params"]


class _RecordEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, where ``cart.items`` is the record's field, not ``dict.items``."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


_ENV = _RecordEnvironment(autoescape=False, keep_trailing_newline=True)


@functools.lru_cache(maxsize=1024)
def _compiled(source: str) -> Any:
    return _ENV.from_string(source)


def check_template(source: str) -> str | None:
    """Why ``source`` is not a valid template, or ``None`` when it is."""
    try:
        _ENV.parse(source)
    except TemplateSyntaxError as exc:
        return f"template error on line {exc.lineno}: {exc.message}"
    return None


def render(source: str, data: Mapping[str, Any]) -> str:
    """``source`` rendered with ``data`` (plain text stays as it is, cheaply)."""
    if "{" not in source:
        return source
    return str(_compiled(source).render(**data))


def render_params(value: Any, data: Mapping[str, Any], raw: frozenset[str] = frozenset()) -> Any:
    """Every string inside ``value`` rendered as a template; top-level keys in ``raw`` kept as they are.

    A string that is a single ``{{ expression }}`` keeps the expression's type
    (``{{ record.owner }}`` gives the integer id, not its text).
    """
    if isinstance(value, Mapping):
        return {
            key: item if key in raw else render_params(item, data) for key, item in value.items()
        }
    if isinstance(value, list):
        return [render_params(item, data) for item in value]
    if isinstance(value, str):
        stripped = value.strip()
        if (
            stripped.startswith("{{")
            and stripped.endswith("}}")
            and stripped.count("{{") == 1
            and "|" not in stripped
        ):
            expression = _ENV.compile_expression(stripped[2:-2].strip(), undefined_to_none=True)
            return expression(**data)
        return render(value, data)
    return value


def template_strings(value: Any, path: str) -> list[tuple[str, str]]:
    """``(path, string)`` for every string inside ``value`` (to check them all)."""
    if isinstance(value, Mapping):
        found: list[tuple[str, str]] = []
        for key, item in value.items():
            found.extend(template_strings(item, f"{path}.{key}"))
        return found
    if isinstance(value, list):
        found = []
        for index, item in enumerate(value):
            found.extend(template_strings(item, f"{path}[{index}]"))
        return found
    if isinstance(value, str):
        return [(path, value)]
    return []
