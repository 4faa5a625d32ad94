"""Features read their own frozen config; only their set-up path reads the shell's settings.

Each feature converts ``sambung.engine.config`` settings into the frozen dataclasses of its own
``model.py`` in one place: ``config()`` in its ``__init__.py`` and the ``settings.py`` converter
that only that imports. The rest of a feature never imports the settings, so the settings can
change shape (or a feature be driven from elsewhere, as a test drives it) without the feature's
code noticing. The imports are parsed, not grepped: a comment or a string naming the module is
no import, and ``from sambung.engine import config`` is one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
FEATURES = ("acd", "dialer", "ivr", "recordings", "console", "wallboard")
SETTINGS = "sambung.engine.config"
# The set-up entry points: the package (``config`` and ``setup``) and its converter.
SETUP_MODULES = frozenset(
    {
        "sambung/acd/__init__.py",
        "sambung/acd/settings.py",
        "sambung/dialer/__init__.py",
        "sambung/dialer/settings.py",
        "sambung/ivr/__init__.py",
        "sambung/ivr/settings.py",
        "sambung/recordings/__init__.py",
        "sambung/recordings/settings.py",
        "sambung/console/__init__.py",
    }
)
CONVERTERS = frozenset(f"sambung.{f}.settings" for f in FEATURES)
# Code outside the features that must reach a converter through the feature's ``config()``.
OTHER_CODE = ("sambung/engine", "sambung/asterisk", "sambung/auth", "bench", "scripts")


def module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """Every module the source imports, wherever the import is (a function, TYPE_CHECKING),
    as an absolute name. ``from a import b`` counts as both ``a`` and ``a.b``: b may be a
    module. ``importlib.import_module("...")`` and ``__import__("...")`` count too."""
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            arg = node.args[0]
            if name in ("import_module", "__import__") and isinstance(arg, ast.Constant):
                out.add(str(arg.value))
    return out


def imports_of(path: Path) -> set[str]:
    rel = path.relative_to(ROOT)
    return imported_modules(
        path.read_text(encoding="utf-8"), module_name(rel), path.name == "__init__.py"
    )


def names(found: set[str], wanted: str | frozenset[str]) -> set[str]:
    targets = {wanted} if isinstance(wanted, str) else set(wanted)
    return {m for m in found if any(m == t or m.startswith(f"{t}.") for t in targets)}


def sources(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def settings_readers() -> dict[str, set[str]]:
    """Feature modules outside the set-up path that import the shell's settings, or a
    feature's converter."""
    out: dict[str, set[str]] = {}
    for path in sources(*(f"sambung/{f}" for f in FEATURES)):
        rel = path.relative_to(ROOT).as_posix()
        if rel in SETUP_MODULES:
            continue
        hit = names(imports_of(path), SETTINGS) | names(imports_of(path), CONVERTERS)
        if hit:
            out[rel] = hit
    return out


def test_given_the_features_then_only_their_setup_path_imports_the_settings() -> None:
    assert settings_readers() == {}, (
        "features take their own frozen config (their model.py), converted by their config() "
        "in __init__.py and settings.py; these modules read the shell's settings instead"
    )


def test_given_the_shell_then_it_reaches_a_converter_only_through_the_feature() -> None:
    found = {
        path.relative_to(ROOT).as_posix(): names(imports_of(path), CONVERTERS)
        for path in sources(*OTHER_CODE)
    }
    assert {k: v for k, v in found.items() if v} == {}


def test_the_listed_setup_modules_exist() -> None:
    # A renamed entry point would otherwise leave a stale exemption behind.
    assert [m for m in sorted(SETUP_MODULES) if not (ROOT / m).is_file()] == []


@pytest.mark.parametrize(
    "source",
    [
        "from sambung.engine.config import QueueSettings",
        "import sambung.engine.config",
        "import sambung.engine.config as cfg",
        "from sambung.engine import config",
        (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from sambung.engine.config import X"
        ),
        "def f():\n    from sambung.engine.config import Settings\n    return Settings",
        "import importlib\nimportlib.import_module('sambung.engine.config')",
    ],
)
def test_given_any_form_of_import_then_the_settings_import_is_found(source: str) -> None:
    assert names(imported_modules(source, "sambung.acd.routing", is_package=False), SETTINGS)


@pytest.mark.parametrize(
    ("source", "module", "is_package"),
    [
        ("from . import settings", "sambung.acd.service", False),
        ("from .settings import acd_config", "sambung.acd.service", False),
        ("from .settings import acd_config", "sambung.acd", True),
        ("from ..settings import dialer_config", "sambung.dialer.sub.mod", False),
        ("from sambung.acd.settings import disposition_config", "sambung.dialer.service", False),
    ],
)
def test_given_a_relative_or_absolute_import_then_the_converter_import_is_found(
    source: str, module: str, is_package: bool
) -> None:
    assert names(imported_modules(source, module, is_package), CONVERTERS)


@pytest.mark.parametrize(
    "source",
    [
        "# from sambung.engine.config import Settings",
        "'''sambung.engine.config is read by the set-up path only'''",
        "from sambung.engine.configure import x",
        "from sambung.engine import calendars",
    ],
)
def test_given_no_import_then_nothing_is_found(source: str) -> None:
    assert not names(imported_modules(source, "sambung.acd.routing", is_package=False), SETTINGS)
