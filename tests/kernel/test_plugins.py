"""The plugin manager: enablement, requirement order, validation, env switches."""

from __future__ import annotations

import io
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from jimu.errors import PluginError
from jimu.meta import EntityDef, FieldDef, PluginInfo
from jimu.plugins import load_plugins
from jimu_sdk import hookimpl


def plugin_module(
    name: str, *, requires: tuple[str, ...] = (), kernel: str = "", **functions: Callable[..., Any]
) -> ModuleType:
    """A throw-away plugin module with ``PLUGIN`` and the given functions."""
    module = ModuleType(f"test_plugin_{name}")
    module.PLUGIN = PluginInfo(name=name, version="1.0.0", requires=list(requires), kernel=kernel)  # type: ignore[attr-defined]
    for attr, function in functions.items():
        setattr(module, attr, function)
    return module


def entity_hook(entity_name: str) -> Callable[[], list[EntityDef]]:
    @hookimpl
    def jimu_entities() -> list[EntityDef]:
        return [EntityDef(name=entity_name, fields=[FieldDef(name="title", type="text")])]

    return jimu_entities


def test_plugins_load_after_their_requirements() -> None:
    available = {
        "crm": plugin_module("crm", requires=("base",), jimu_entities=entity_hook("lead")),
        "base": plugin_module("base", jimu_entities=entity_hook("account")),
        "loyalty": plugin_module("loyalty", requires=("crm",), jimu_entities=entity_hook("points")),
    }
    manager = load_plugins(["loyalty", "crm", "base"], available=available, env={})
    assert [p.name for p in manager.external()] == ["base", "crm", "loyalty"]
    assert [e.name for e in manager.entities()] == ["account", "lead", "points"]
    assert [e.plugin for e in manager.entities()] == ["base", "crm", "loyalty"]
    assert "jimu.fields" in manager.plugins and manager.plugins["jimu.fields"].builtin


def test_missing_requirement_is_a_clear_error() -> None:
    available = {"crm": plugin_module("crm", requires=("base",)), "base": plugin_module("base")}
    with pytest.raises(
        PluginError,
        match=r"plugin 'crm' requires 'base', which is not enabled on this site; run `jimu plugins enable base`",
    ):
        load_plugins(["crm"], available=available, env={})


def test_requirement_cycle_is_named() -> None:
    available = {
        "a": plugin_module("a", requires=("b",)),
        "b": plugin_module("b", requires=("c",)),
        "c": plugin_module("c", requires=("a",)),
    }
    with pytest.raises(PluginError, match=r"plugin requirements form a cycle: a -> b -> c -> a"):
        load_plugins(["a", "b", "c"], available=available, env={})


def test_plugin_not_installed_lists_what_is() -> None:
    with pytest.raises(
        PluginError,
        match=r"plugin 'ghost' is enabled on this site but not installed .*installed: real",
    ):
        load_plugins(["ghost"], available={"real": plugin_module("real")}, env={})


def test_incompatible_kernel_version() -> None:
    available = {"old": plugin_module("old", kernel=">=9.0")}
    with pytest.raises(
        PluginError, match=r"plugin 'old' 1.0.0 supports kernel >=9.0, but this is jimu-core 0.1.0"
    ):
        load_plugins(["old"], available=available, env={})


def test_bad_kernel_specifier() -> None:
    available = {"odd": plugin_module("odd", kernel="version nine")}
    with pytest.raises(
        PluginError, match=r"declares kernel 'version nine', which is not a version specifier"
    ):
        load_plugins(["odd"], available=available, env={})


def test_misspelt_hook_name_is_refused_with_a_suggestion() -> None:
    @hookimpl
    def jimu_entites() -> list[EntityDef]:
        return []

    available = {"typo": plugin_module("typo", jimu_entites=jimu_entites)}
    with pytest.raises(
        PluginError,
        match=r"plugin 'typo' implements unknown hook 'jimu_entites'; did you mean 'jimu_entities'\?",
    ):
        load_plugins(["typo"], available=available, env={})


def test_hook_function_without_marker_is_refused() -> None:
    def jimu_entities() -> list[EntityDef]:
        return []

    available = {"plain": plugin_module("plain", jimu_entities=jimu_entities)}
    with pytest.raises(
        PluginError, match=r"function 'jimu_entities' matches a hook but lacks @hookimpl"
    ):
        load_plugins(["plain"], available=available, env={})


def test_hook_with_unknown_argument_is_refused() -> None:
    @hookimpl
    def jimu_before_create(site: Any, entity: Any, values: Any, colour: Any) -> None:
        return None

    available = {"args": plugin_module("args", jimu_before_create=jimu_before_create)}
    with pytest.raises(PluginError, match=r"plugin 'args'.*colour"):
        load_plugins(["args"], available=available, env={})


def test_entry_point_name_must_match_plugin_name() -> None:
    with pytest.raises(
        PluginError, match=r"entry point 'alias' loads a plugin that calls itself 'real'"
    ):
        load_plugins(["alias"], available={"alias": plugin_module("real")}, env={})


def test_module_without_plugin_info() -> None:
    with pytest.raises(PluginError, match=r"has no PLUGIN = PluginInfo"):
        load_plugins(["bare"], available={"bare": ModuleType("bare")}, env={})


def test_disabled_plugin_is_not_loaded() -> None:
    available = {
        "crm": plugin_module("crm", jimu_entities=entity_hook("lead")),
        "erp": plugin_module("erp", jimu_entities=entity_hook("erp_order")),
    }
    manager = load_plugins(["crm"], available=available, env={})
    assert "erp" not in manager.plugins
    assert [e.name for e in manager.entities()] == ["lead"]


def test_block_list_env_switch() -> None:
    available = {
        "crm": plugin_module("crm", jimu_entities=entity_hook("lead")),
        "erp": plugin_module("erp", jimu_entities=entity_hook("erp_order")),
    }
    manager = load_plugins(["crm", "erp"], available=available, env={"JIMU_DISABLE_PLUGINS": "erp"})
    assert [p.name for p in manager.external()] == ["crm"]


def test_allow_list_env_switch() -> None:
    available = {"crm": plugin_module("crm"), "erp": plugin_module("erp")}
    manager = load_plugins(["crm", "erp"], available=available, env={"JIMU_LOAD_PLUGINS": "erp"})
    assert [p.name for p in manager.external()] == ["erp"]
    empty = load_plugins(["crm", "erp"], available=available, env={"JIMU_LOAD_PLUGINS": ""})
    assert empty.external() == []
    assert "jimu.fields" in empty.plugins  # built-ins cannot be switched off


def test_blocking_a_requirement_names_the_switch() -> None:
    available = {"crm": plugin_module("crm", requires=("base",)), "base": plugin_module("base")}
    with pytest.raises(
        PluginError,
        match=r"plugin 'crm' requires 'base', which JIMU_DISABLE_PLUGINS keeps from loading",
    ):
        load_plugins(["crm", "base"], available=available, env={"JIMU_DISABLE_PLUGINS": "base"})
    with pytest.raises(PluginError, match=r"which JIMU_LOAD_PLUGINS keeps from loading"):
        load_plugins(["crm", "base"], available=available, env={"JIMU_LOAD_PLUGINS": "crm"})


def test_trace_switch_prints_hook_calls() -> None:
    available = {"crm": plugin_module("crm", jimu_entities=entity_hook("lead"))}
    stream = io.StringIO()
    manager = load_plugins(
        ["crm"], available=available, env={"JIMU_TRACE_PLUGINS": "1"}, trace_stream=stream
    )
    manager.hook.jimu_entities()
    output = stream.getvalue()
    assert "[jimu trace] jimu_entities() -> [crm]" in output
    assert "returned" in output and "lead" in output
    # the kernel's own typed calls are traced too, one line per implementation
    manager.entities()
    assert "[jimu trace] crm.jimu_entities() -> [EntityDef(name='lead'" in stream.getvalue()
    assert "[jimu trace] jimu.fields.jimu_field_types()" in output


def test_tryfirst_and_trylast_move_within_load_order() -> None:
    @hookimpl(trylast=True)
    def last() -> list[EntityDef]:
        return [EntityDef(name="z_last")]

    @hookimpl(tryfirst=True)
    def first() -> list[EntityDef]:
        return [EntityDef(name="a_first")]

    available = {
        "one": plugin_module("one", jimu_entities=last),
        "two": plugin_module("two", requires=("one",), jimu_entities=entity_hook("middle")),
        "three": plugin_module("three", requires=("two",), jimu_entities=first),
    }
    manager = load_plugins(["one", "two", "three"], available=available, env={})
    assert [e.name for e in manager.entities()] == ["a_first", "middle", "z_last"]


def test_one_manager_per_call_nothing_global() -> None:
    available = {"crm": plugin_module("crm", jimu_entities=entity_hook("lead"))}
    first = load_plugins(["crm"], available=available, env={})
    second = load_plugins([], available=available, env={})
    assert "crm" in first.plugins and "crm" not in second.plugins


def test_two_plugins_cannot_register_one_field_type() -> None:
    from jimu.fields.builtin import TextType

    @hookimpl
    def jimu_field_types() -> list[Any]:
        return [TextType()]

    available = {"dup": plugin_module("dup", jimu_field_types=jimu_field_types)}
    with pytest.raises(
        PluginError, match=r"field type 'text' is registered by both 'jimu.fields' and 'dup'"
    ):
        load_plugins(["dup"], available=available, env={})


def test_installed_example_plugins_are_discovered() -> None:
    manager = load_plugins(["example_vip", "demo_store"], env={})
    assert {"example_vip", "demo_store"} <= set(manager.plugins)
    assert manager.plugins["example_vip"].hook_names() == [
        "jimu_before_create",
        "jimu_before_update",
        "jimu_entities",
        "jimu_fixtures",
    ]


def test_a_hook_item_of_the_wrong_kind_names_plugin_hook_and_item() -> None:
    @hookimpl
    def jimu_entities() -> list[Any]:
        return ["customer"]

    @hookimpl
    def jimu_forms() -> list[Any]:
        return [{"name": "f"}]

    manager = load_plugins(
        ["shop"], available={"shop": plugin_module("shop", jimu_entities=jimu_entities)}, env={}
    )
    with pytest.raises(
        PluginError, match=r"plugin 'shop': jimu_entities returned 'customer', not an EntityDef$"
    ):
        manager.entities()
    manager = load_plugins(
        ["shop"], available={"shop": plugin_module("shop", jimu_forms=jimu_forms)}, env={}
    )
    from jimu.meta.forms import FormDef

    with pytest.raises(
        PluginError, match=r"plugin 'shop': jimu_forms returned \{'name': 'f'\}, not a FormDef$"
    ):
        manager.collect_typed("jimu_forms", FormDef)


def test_a_registry_refusing_an_item_is_a_plugin_error() -> None:
    @hookimpl
    def jimu_entities() -> list[EntityDef]:
        return [EntityDef(name="lead", fields=[])]

    manager = load_plugins(
        ["crm"], available={"crm": plugin_module("crm", jimu_entities=jimu_entities)}, env={}
    )

    def refuse(item: EntityDef, owner: str) -> None:
        raise ValueError(f"{item.name!r} is taken")

    with pytest.raises(PluginError, match=r"^plugin 'crm': 'lead' is taken$"):
        manager.register_typed("jimu_entities", EntityDef, refuse)
