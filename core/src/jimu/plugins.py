"""The plugin manager: discovery, per-site enablement, requirement order, validation.

One :class:`PluginManager` per app instance, built by an explicit call to
:func:`load_plugins` (from the app factory or the CLI), never at import time.
Plugins are Python modules exposed through the ``jimu.plugins`` entry-point
group; each has a module-level ``PLUGIN`` (:class:`jimu.meta.PluginInfo`) and
``@hookimpl`` functions named after the specs in :mod:`jimu.hookspecs`.

Environment switches (read when the manager is built):

``JIMU_LOAD_PLUGINS``
    Comma-separated allow-list: only these external plugins may load (an empty
    value loads none). Built-in plugins always load.
``JIMU_DISABLE_PLUGINS``
    Comma-separated block-list: these plugins never load, even when enabled.
``JIMU_TRACE_PLUGINS``
    ``1`` prints every hook call and its result to standard error.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

import jimu
from jimu import hookspecs
from jimu.errors import PluginError
from jimu.fields import FieldType, FieldTypeRegistry
from jimu.meta import EntityDef, MetadataError, PluginInfo

if TYPE_CHECKING:
    from jimu.site import Site

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "LoadedPlugin",
    "PluginManager",
    "available_plugins",
    "load_plugins",
]

#: An item a list-returning hook yields (see :meth:`PluginManager.collect_typed`).
_Item = TypeVar("_Item")

ENTRY_POINT_GROUP = "jimu.plugins"

#: Kernel features written as plugins; they always load and cannot be disabled.
BUILTIN_PLUGINS: tuple[str, ...] = ("jimu.fields.builtin",)

ENV_ALLOW = "JIMU_LOAD_PLUGINS"
ENV_BLOCK = "JIMU_DISABLE_PLUGINS"
ENV_TRACE = "JIMU_TRACE_PLUGINS"


@dataclass(frozen=True)
class LoadedPlugin:
    """A plugin registered with a manager: its metadata, module and hooks."""

    info: PluginInfo
    module: ModuleType
    builtin: bool

    @property
    def name(self) -> str:
        """The plugin's name (``PLUGIN.name``)."""
        return self.info.name

    def hook_names(self) -> list[str]:
        """The hooks this plugin implements, sorted."""
        names = []
        for attr in dir(self.module):
            value = getattr(self.module, attr)
            opts = getattr(value, f"{hookspecs.PROJECT_NAME}_impl", None)
            if opts is not None:
                names.append(opts.get("specname") or attr)
        return sorted(names)


def _split_env(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def available_plugins() -> dict[str, Callable[[], ModuleType]]:
    """Installed plugins by entry-point name, each as a loader of its module."""
    found: dict[str, Callable[[], ModuleType]] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        found[entry_point.name] = entry_point.load
    return found


def _plugin_info(module: ModuleType, where: str) -> PluginInfo:
    info = getattr(module, "PLUGIN", None)
    if not isinstance(info, PluginInfo):
        raise PluginError(
            f"{where}: module {module.__name__!r} has no PLUGIN = PluginInfo(...) "
            "describing the plugin (name, version, requires, kernel)"
        )
    return info


def _check_kernel(info: PluginInfo) -> None:
    if not info.kernel:
        return
    try:
        spec = SpecifierSet(info.kernel)
    except InvalidSpecifier as exc:
        raise PluginError(
            f"plugin {info.name!r} declares kernel {info.kernel!r}, "
            "which is not a version specifier (write e.g. '>=0.1,<0.2')"
        ) from exc
    if Version(jimu.__version__) not in spec:
        raise PluginError(
            f"plugin {info.name!r} {info.version} supports kernel {info.kernel}, "
            f"but this is jimu-core {jimu.__version__}; upgrade the plugin or the kernel"
        )


def _order_by_requirements(plugins: Mapping[str, LoadedPlugin]) -> list[str]:
    """Names in an order where every plugin comes after the plugins it requires."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*trail[trail.index(name) :], name]
            raise PluginError("plugin requirements form a cycle: " + " -> ".join(cycle))
        state[name] = "visiting"
        for required in plugins[name].info.requires:
            visit(required, [*trail, name])
        state[name] = "done"
        order.append(name)

    for name in sorted(plugins):
        visit(name, [])
    return order


class _Tracer:
    """Prints hook calls and results (``JIMU_TRACE_PLUGINS=1``)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def before(self, hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        plugins = ", ".join(impl.plugin_name for impl in impls)
        args = ", ".join(f"{key}={value!r}"[:80] for key, value in kwargs.items())
        print(f"[jimu trace] {hook_name}({args}) -> [{plugins}]", file=self.stream)

    def after(self, outcome: Any, hook_name: str, impls: Sequence[Any], kwargs: Any) -> None:
        try:
            result = outcome.get_result()
        except BaseException as exc:
            print(f"[jimu trace] {hook_name} raised {exc!r}", file=self.stream)
        else:
            print(f"[jimu trace] {hook_name} returned {result!r}"[:400], file=self.stream)


class PluginManager:
    """The plugins of one app instance and typed calls into their hooks."""

    def __init__(self, plugins: Sequence[LoadedPlugin], *, trace: TextIO | None = None) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, LoadedPlugin] = {}
        for plugin in plugins:
            self._register(plugin)
        self._validate()
        self._trace = trace
        if trace is not None:
            tracer = _Tracer(trace)
            self._pm.add_hookcall_monitoring(tracer.before, tracer.after)
        self.field_types = self._collect_field_types()

    # -- loading ---------------------------------------------------------

    def _register(self, plugin: LoadedPlugin) -> None:
        stray = [
            name
            for name, value in vars(plugin.module).items()
            if name.startswith("jimu_")
            and callable(value)
            and not hasattr(value, f"{hookspecs.PROJECT_NAME}_impl")
            and hasattr(hookspecs, name)
        ]
        if stray:
            raise PluginError(
                f"plugin {plugin.name!r}: function {stray[0]!r} matches a hook but lacks "
                "@hookimpl, so it would never be called; decorate it with jimu_sdk.hookimpl"
            )
        try:
            self._pm.register(plugin.module, name=plugin.name)
        except pluggy.PluginValidationError as exc:
            lines = str(exc).splitlines()
            raise PluginError(f"plugin {plugin.name!r}: {lines[0]}: {lines[-1]}") from exc
        self.plugins[plugin.name] = plugin

    def _validate(self) -> None:
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            hook_name = str(exc).split("unknown hook", 1)[-1].strip().split()[0].strip("'\"")
            known = [name for name in dir(hookspecs) if name.startswith("jimu_")]
            close = difflib.get_close_matches(hook_name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            plugin = getattr(exc, "plugin", None)
            owner = self._pm.get_name(plugin) if plugin is not None else "a plugin"
            raise PluginError(
                f"plugin {owner!r} implements unknown hook {hook_name!r}{hint} "
                f"(hooks are listed in jimu.hookspecs)"
            ) from exc

    def _collect_field_types(self) -> FieldTypeRegistry:
        registry = FieldTypeRegistry()
        for impl in self._pm.hook.jimu_field_types.get_hookimpls():
            returned = cast(Sequence[object], self._call_impl("jimu_field_types", impl, {}))
            for field_type in returned:
                if not isinstance(field_type, FieldType):
                    raise PluginError(
                        f"plugin {impl.plugin_name!r}: jimu_field_types returned "
                        f"{field_type!r}, not a FieldType instance"
                    )
                try:
                    registry.register(field_type, impl.plugin_name)
                except MetadataError as exc:
                    raise PluginError(exc.reason) from exc
        return registry

    # -- introspection ---------------------------------------------------

    @property
    def hook(self) -> Any:
        """pluggy's hook relay, for hooks without a typed method yet."""
        return self._pm.hook

    def external(self) -> list[LoadedPlugin]:
        """The non-built-in plugins, in load order."""
        return [plugin for plugin in self.plugins.values() if not plugin.builtin]

    # -- typed calls -----------------------------------------------------

    def _call_impl(self, hook_name: str, impl: Any, kwargs: Mapping[str, Any]) -> Any:
        """Call one implementation with the arguments it asks for (traced when on)."""
        result = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
        if self._trace is not None:
            shown = ", ".join(f"{k}={kwargs[k]!r}"[:60] for k in impl.argnames)
            print(
                f"[jimu trace] {impl.plugin_name}.{hook_name}({shown}) -> {result!r}"[:400],
                file=self._trace,
            )
        return result

    def _collect(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a list-returning hook; return ``(plugin name, item)`` in load order."""
        caller = getattr(self._pm.hook, hook_name)
        items: list[tuple[str, Any]] = []
        for impl in _in_load_order(caller.get_hookimpls()):
            result = self._call_impl(hook_name, impl, kwargs)
            if result is None:
                continue
            if isinstance(result, Mapping):
                items.append((impl.plugin_name, result))
            else:
                items.extend((impl.plugin_name, item) for item in result)
        return items

    def entities(self) -> list[EntityDef]:
        """Entities declared by plugins, stamped with their owning plugin."""
        found: list[EntityDef] = []
        for owner, entity in self.collect_typed("jimu_entities", EntityDef):
            stamped = entity if entity.plugin == owner else _with_plugin(entity, owner)
            found.append(stamped)
        return found

    def collect_typed(
        self, hook_name: str, kind: type[_Item], **kwargs: Any
    ) -> list[tuple[str, _Item]]:
        """Like :meth:`collect_owned`; an item that is not a ``kind`` is a
        :class:`PluginError` naming the plugin, the hook and what it returned."""
        items = self._collect(hook_name, **kwargs)
        for owner, item in items:
            if not isinstance(item, kind):
                article = "an" if kind.__name__[0] in "AEIOU" else "a"
                raise PluginError(
                    f"plugin {owner!r}: {hook_name} returned {item!r}, "
                    f"not {article} {kind.__name__}"
                )
        return items

    def register_typed(
        self, hook_name: str, kind: type[_Item], add: Callable[[_Item, str], object]
    ) -> None:
        """Hand each ``kind`` item of a hook to ``add(item, owner)`` (see :meth:`collect_typed`);
        a registry refusing one (``ValueError``, a taken name) is a :class:`PluginError`."""
        for owner, item in self.collect_typed(hook_name, kind):
            try:
                add(item, owner)
            except ValueError as exc:
                raise PluginError(f"plugin {owner!r}: {exc}") from exc

    def collect_owned(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Like :meth:`collect`, each item paired with the plugin that returned it."""
        return self._collect(hook_name, **kwargs)

    def collect(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Items of a list-returning hook from every plugin, requirements first."""
        return [item for _, item in self._collect(hook_name, **kwargs)]

    async def call_async(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call a hook whose implementations may be coroutines; await each in load order."""
        caller = getattr(self._pm.hook, hook_name)
        results = []
        for impl in _in_load_order(caller.get_hookimpls()):
            result = self._call_impl(hook_name, impl, kwargs)
            if inspect.isawaitable(result):
                result = await result
            results.append(result)
        return results

    def has_hook(self, hook_name: str) -> bool:
        """Whether any plugin implements ``hook_name`` (lets hot paths skip empty calls)."""
        return bool(getattr(self._pm.hook, hook_name).get_hookimpls())

    async def call_plugin(self, plugin_name: str, hook_name: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of a lifecycle hook, if it has one."""
        caller = getattr(self._pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin_name == plugin_name:
                result = self._call_impl(hook_name, impl, kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return result
        return None

    async def fixtures(self, site: Site, kind: str) -> list[tuple[str, Mapping[str, Any]]]:
        """``(plugin, {entity: records})`` pairs from ``jimu_fixtures`` for ``kind``."""
        caller = self._pm.hook.jimu_fixtures
        found = []
        for impl in _in_load_order(caller.get_hookimpls()):
            result = self._call_impl("jimu_fixtures", impl, {"site": site, "kind": kind})
            if inspect.isawaitable(result):
                result = await result
            if result:
                found.append((impl.plugin_name, result))
        return found


def _in_load_order(impls: Sequence[Any]) -> list[Any]:
    """Implementations in load order (requirements first), ``tryfirst`` before, ``trylast`` after.

    pluggy keeps them grouped trylast / normal / tryfirst, each in registration
    order, and calls them from the end; kernel callers want requirements first.
    """
    return (
        [impl for impl in impls if impl.tryfirst]
        + [impl for impl in impls if not impl.tryfirst and not impl.trylast]
        + [impl for impl in impls if impl.trylast]
    )


def _with_plugin(entity: EntityDef, owner: str) -> EntityDef:
    import msgspec

    return msgspec.structs.replace(entity, plugin=owner)


def load_plugins(
    enabled: Iterable[str],
    *,
    available: Mapping[str, Callable[[], ModuleType] | ModuleType] | None = None,
    env: Mapping[str, str] | None = None,
    trace_stream: TextIO | None = None,
) -> PluginManager:
    """Build the plugin manager for a site that enables ``enabled``.

    ``available`` maps plugin names to modules (or loaders of modules); by
    default it is every ``jimu.plugins`` entry point. Raises
    :class:`~jimu.errors.PluginError` with a message naming the plugin for a
    plugin that is not installed, a missing or blocked requirement, a cycle,
    an incompatible kernel version or a bad hook.
    """
    environ = os.environ if env is None else env
    allow = _split_env(environ.get(ENV_ALLOW))
    block = _split_env(environ.get(ENV_BLOCK)) or set()
    trace = environ.get(ENV_TRACE, "").lower() in {"1", "true", "yes", "on"}
    sources = available_plugins() if available is None else dict(available)

    wanted = list(dict.fromkeys(enabled))
    skipped = {
        name for name in wanted if name in block or (allow is not None and name not in allow)
    }
    loaded: dict[str, LoadedPlugin] = {}
    for name in wanted:
        if name in skipped:
            continue
        source = sources.get(name)
        if source is None:
            installed = ", ".join(sorted(sources)) or "none"
            raise PluginError(
                f"plugin {name!r} is enabled on this site but not installed "
                f"(no {ENTRY_POINT_GROUP!r} entry point named {name!r}; installed: {installed})"
            )
        module = source if isinstance(source, ModuleType) else source()
        info = _plugin_info(module, f"plugin {name!r}")
        if info.name != name:
            raise PluginError(
                f"entry point {name!r} loads a plugin that calls itself {info.name!r}; "
                "the two names must match"
            )
        _check_kernel(info)
        loaded[name] = LoadedPlugin(info=info, module=module, builtin=False)

    for plugin in loaded.values():
        for required in plugin.info.requires:
            if required in loaded:
                continue
            if required in skipped:
                switch = ENV_BLOCK if required in block else ENV_ALLOW
                raise PluginError(
                    f"plugin {plugin.name!r} requires {required!r}, which {switch} keeps "
                    "from loading; allow it or disable "
                    f"{plugin.name!r} too"
                )
            raise PluginError(
                f"plugin {plugin.name!r} requires {required!r}, which is not enabled on this "
                f"site; run `jimu plugins enable {required}` first"
            )

    order = _order_by_requirements(loaded)
    builtins = []
    for module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        builtins.append(
            LoadedPlugin(info=_plugin_info(module, module_name), module=module, builtin=True)
        )
    plugins = builtins + [loaded[name] for name in order]
    return PluginManager(plugins, trace=(trace_stream or sys.stderr) if trace else None)
