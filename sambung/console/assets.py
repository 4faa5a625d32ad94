"""The files the console's pages load from /static/, and the start-up check that they are there.

Our own files live in ``static/``. The two front-end libraries (htmx and its SSE extension)
are committed copies in ``static/vendor/`` of the npm packages pinned in ``web/package.json``:
they ship as package data, so an engine installed from the wheel serves the same bytes as a
checkout. ``tests/unit/test_install_paths.py`` keeps the copies equal to those pinned versions.

A page whose script is missing renders but does nothing, and nothing warns; so the engine
refuses to start instead (``check_assets``), naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from sambung.engine.errors import SambungError

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
VENDOR = HERE / "static" / "vendor"

# What the engine serves under /static/: the name in the URL -> the file.
STATIC_FILES: Mapping[str, Path] = {
    "console.css": HERE / "static" / "console.css",
    "console.js": HERE / "static" / "console.js",
    "htmx.min.js": VENDOR / "htmx.min.js",
    "sse.min.js": VENDOR / "sse.min.js",
}

# Where each vendored file comes from: served name -> (npm package, path inside the package).
# The versions are not repeated here: web/package.json pins them.
VENDORED: Mapping[str, tuple[str, str]] = {
    "htmx.min.js": ("htmx.org", "dist/htmx.min.js"),
    "sse.min.js": ("htmx-ext-sse", "dist/sse.min.js"),
}

# href="/static/x" and src="/static/x" in the page templates.
_STATIC_REF = re.compile(r"""(?:href|src)\s*=\s*["']/static/([^"'?#]+)""")


class MissingAsset(SambungError):
    """A file a console page loads is not installed (a broken or partial install)."""

    error_id = "console.asset_missing"
    title = "Console asset missing"


def page_assets(templates: Path = TEMPLATES) -> set[str]:
    """The /static/ names the page templates reference."""
    names: set[str] = set()
    for page in sorted(templates.glob("*.html")):
        names.update(_STATIC_REF.findall(page.read_text(encoding="utf-8")))
    return names


def missing_assets(
    referenced: Iterable[str] | None = None, files: Mapping[str, Path] | None = None
) -> list[str]:
    """One line per referenced asset that would answer 404: not served, or not on disk."""
    served = STATIC_FILES if files is None else files
    problems: list[str] = []
    for name in sorted(page_assets() if referenced is None else referenced):
        path = served.get(name)
        if path is None:
            problems.append(f"/static/{name} is referenced by a page but not served")
        elif not path.is_file():
            problems.append(f"/static/{name}: {path} is missing")
    return problems


def check_assets(files: Mapping[str, Path] | None = None) -> None:
    """Raise MissingAsset, naming every missing file, unless every page asset is installed."""
    problems = missing_assets(files=files)
    if not problems:
        return
    raise MissingAsset(
        "the console's pages cannot load: "
        + "; ".join(problems)
        + " (reinstall the package, or set [console] enabled = false)",
        missing=problems,
    )
