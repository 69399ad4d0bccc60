"""Open registries: name -> factory for each kind of component.

Kinds: ``solver``, ``backbone``, ``method``, ``umm``, ``dataset``. Names are matched case-,
dash-, underscore- and space-insensitively (``IMTL-G`` == ``imtlg`` == ``imtl_g``,
:func:`mtopt.names.normalize`).

The built-ins are the data rows of :mod:`mtopt.catalog`; this module imports no component
module (only :mod:`mtopt.errors`, :mod:`mtopt.names` and :mod:`mtopt.catalog`). Entries are
*lazy*: a target is a ``"module:attribute"`` string imported only when it is first used, so
``import mtopt``, ``mtopt --help`` and ``mtopt list`` import neither torch nor cvxpy.

Third parties register through the ``mtopt.plugins`` entry-point group. Each entry point names a
callable ``register(registry: Registry) -> None``, for example in a plugin's ``pyproject.toml``::

    [project.entry-points."mtopt.plugins"]
    my_plugin = "my_package.mtopt_plugin:register"

and ``register`` calls ``registry.register("solver", "my-solver", "my_package.solver:solve",
"one-line description")``. See ``plugins/mtopt-example-plugin``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from mtopt import catalog
from mtopt.catalog import KINDS
from mtopt.errors import InputError, UnknownNameError
from mtopt.names import normalize

__all__ = ["ENTRY_POINT_GROUP", "KINDS", "Entry", "Registry", "normalize", "register", "registry"]

ENTRY_POINT_GROUP = "mtopt.plugins"


@dataclass
class Entry:
    """One registered component. ``target`` is the object itself or a ``"module:attr"`` path.

    ``meta`` holds the capabilities (e.g. ``max_n``, ``heavy``, ``pub_diagnostics``);
    ``label`` is the display name for tables (``""``: none).
    """

    kind: str
    name: str
    target: Any
    description: str
    citation: str = ""
    source: str = "mtopt"
    meta: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def load(self) -> Any:
        """Import (once) and return the registered object."""
        if isinstance(self.target, str):
            self.target = catalog.load(self.target)
        return self.target


class Registry:
    """Name -> :class:`Entry` maps, one per kind, with plugin discovery on first use.

    ``rows`` are catalog rows to start from (the global :data:`registry` uses
    :data:`mtopt.catalog.ROWS`; a private ``Registry()`` starts empty).
    """

    def __init__(self, rows: tuple[catalog.Row, ...] = ()) -> None:
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self._plugins_loaded = False
        self._loading_source = "mtopt"
        for row in rows:
            self.register(row.kind, row.name, row.target, row.description, row.citation,
                          label=row.label, **row.capabilities)  # fmt: skip

    def register(
        self,
        kind: str,
        name: str,
        target: Any,
        description: str,
        citation: str = "",
        *,
        label: str = "",
        **meta: Any,
    ) -> None:
        """Register ``target`` (object or ``"module:attr"``) under ``name`` for ``kind``.

        Registering a name twice replaces the earlier entry (a plugin may override a built-in).
        """
        if kind not in self._entries:
            raise ValueError(f"unknown registry kind {kind!r} (known: {', '.join(KINDS)})")
        key = normalize(name)
        if not key:
            raise ValueError("a registered name must not be empty")
        self._entries[kind][key] = Entry(
            kind, name, target, description, citation, self._loading_source, dict(meta), label
        )

    def unregister(self, kind: str, name: str) -> None:
        """Remove ``name`` from ``kind`` (no error if absent); e.g. to undo a test registration."""
        self._entries.get(kind, {}).pop(normalize(name), None)

    def _ensure_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            hook: Callable[[Registry], None] = ep.load()
            self._loading_source = ep.value.split(":")[0].split(".")[0]
            try:
                hook(self)
            finally:
                self._loading_source = "mtopt"

    def entries(self, kind: str) -> list[Entry]:
        """All entries of ``kind``, sorted by name."""
        self._ensure_plugins()
        if kind not in self._entries:
            raise InputError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
        return sorted(self._entries[kind].values(), key=lambda e: e.name)

    def names(self, kind: str) -> list[str]:
        """Registered display names of ``kind``, sorted."""
        return [e.name for e in self.entries(kind)]

    def entry(self, kind: str, name: str) -> Entry:
        """The entry for ``name``; :class:`UnknownNameError` lists the known names."""
        self._ensure_plugins()
        found = self._entries.get(kind, {}).get(normalize(name))
        if found is None:
            names = self.names(kind)
            hint = _suggest(name, names)
            raise UnknownNameError(f"unknown {kind} {name!r}{hint} (known: {', '.join(names)})")
        return found

    def get(self, kind: str, name: str) -> Any:
        """Load and return the object registered as ``name``."""
        return self.entry(kind, name).load()

    def has(self, kind: str, name: str) -> bool:
        """Whether ``name`` is registered for ``kind``."""
        self._ensure_plugins()
        return normalize(name) in self._entries.get(kind, {})


def _suggest(name: str, names: list[str]) -> str:
    """``"; did you mean 'newton'?"`` for the closest registered name(s), else ``""``."""
    import difflib

    by_key = {normalize(n): n for n in names}
    close = difflib.get_close_matches(normalize(name), list(by_key), n=2, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(by_key[c]) for c in close) + "?"


registry = Registry(catalog.ROWS)


def register(kind: str, name: str, target: Any, description: str, citation: str = "", **meta: Any):
    """Register into the global registry (see :meth:`Registry.register`)."""
    registry.register(kind, name, target, description, citation, **meta)
