"""Registry: name normalisation, lazy targets, unknown names, meta, plugin hook."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mtopt.errors import InputError, UnknownNameError
from mtopt.registry import Registry, normalize, registry


def test_names_are_case_dash_underscore_insensitive():
    assert normalize("IMTL-G") == normalize("imtlg") == normalize("imtl_g") == "imtlg"
    r = Registry()
    r._plugins_loaded = True  # no entry points for this private instance
    r.register("method", "IMTL-G", "math:sqrt", "test")
    assert r.has("method", "imtlg") and r.has("method", "Imtl_G")
    assert r.get("method", "imtl g") is __import__("math").sqrt  # lazy target loaded once
    assert r.entry("method", "imtlg").name == "IMTL-G"


def test_builtin_solvers_resolve_under_any_spelling():
    from mtopt.solvers import newton

    assert registry.get("solver", "NEWTON") is newton.solve
    assert registry.entry("solver", "Closed_Form").name == "closed-form"
    assert registry.entry("solver", "CCPRaw").name == "ccp-raw"
    assert {"newton", "ccp", "ccp-raw", "fixed-point", "closed-form"} <= set(
        registry.names("solver")
    )


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as exc:
        registry.entry("solver", "nope")
    assert isinstance(exc.value, InputError)
    assert "newton" in str(exc.value) and "nope" in str(exc.value)
    with pytest.raises(InputError):
        registry.entries("gadget")


def test_meta_is_kept():
    r = Registry()
    r._plugins_loaded = True
    r.register("solver", "two-only", "math:sqrt", "test", max_n=2, min_n=2)
    assert r.entry("solver", "two-only").meta == {"max_n": 2, "min_n": 2}


def test_plugin_hook_is_called_with_the_registry(monkeypatch):
    import mtopt.registry as reg

    class EP:
        value = "fake_pkg.hooks:register"

        def load(self):
            return lambda r: r.register("solver", "fake-solver", "math:sqrt", "from a plugin")

    monkeypatch.setattr(
        reg, "entry_points", lambda group: [EP()] if group == reg.ENTRY_POINT_GROUP else []
    )
    r = Registry()
    assert "fake-solver" in r.names("solver")
    assert r.entry("solver", "FAKE_SOLVER").source == "fake_pkg"


def test_list_solvers_cli():
    p = subprocess.run([sys.executable, "-m", "mtopt", "list", "solvers"], capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    for name in ("newton", "ccp", "ccp-raw", "fixed-point", "closed-form"):
        assert any(line.split()[0] == name for line in p.stdout.splitlines() if line.strip())


def test_catalog_is_data_and_the_registry_reads_it():
    from mtopt import catalog

    assert {r.kind for r in catalog.ROWS} == set(catalog.KINDS)
    for row in catalog.ROWS:
        assert ":" in row.target and registry.entry(row.kind, row.name).target is not None
        assert registry.entry(row.kind, row.name).label == row.label
    assert registry.entry("solver", "closed-form").meta == {"min_n": 2, "max_n": 2}
    pub_family = {r.name for r in catalog.rows("method") if r.capabilities.get("pub_diagnostics")}
    assert pub_family == {"pub", "pub-clippy", "pub-adatask"}
    assert registry.entry("method", "PUB+clippy".replace("+", "-")).label == "PUB+Clippy"
    assert registry.entry("backbone", "shared_bottom").label == "Shared-Bottom"


def test_registry_reexports_normalize_and_private_registries_start_empty():
    from mtopt.names import normalize as pure

    assert normalize is pure
    r = Registry()
    r._plugins_loaded = True
    assert r.names("solver") == []
