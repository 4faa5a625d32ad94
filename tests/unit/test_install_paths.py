"""Every documented install path gives a working engine: the compose image, the wheel, the lock.

- The image's Dockerfile copies every package pyproject.toml lists, installs from the lock, and
  its entrypoint runs `sambung check-config` before it starts the engine.
- The lock files pin every dependency pyproject.toml names, inside its range, with hashes.
- A wheel built from the tree, installed in a fresh virtualenv, holds every file the console's
  pages load, and the engine checks for them at start-up.
- One version source: the installed metadata.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

import sambung
from sambung.console import assets
from sambung.console.assets import STATIC_FILES, VENDORED, MissingAsset, check_assets, page_assets

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
IMAGE = ROOT / "ops" / "compose" / "sambung"
DOCKERFILE = IMAGE / "Dockerfile"
ENTRYPOINT = IMAGE / "entrypoint.sh"
PACKAGE_JSON = ROOT / "sambung" / "console" / "web" / "package.json"
NODE_MODULES = ROOT / "sambung" / "console" / "web" / "node_modules"
# Building a wheel and a virtualenv takes a few seconds; anything near this is a hang.
SUBPROCESS_TIMEOUT = 240


def run(*cmd: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    kw.setdefault("cwd", ROOT)
    return subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
        **kw,
    )


# ---- the compose image ------------------------------------------------------------------------


def dockerfile_instructions() -> list[list[str]]:
    """Each instruction as words, continuation lines joined, comments dropped."""
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#")]
    return [ln.split() for ln in "\n".join(lines).replace("\\\n", " ").splitlines() if ln.strip()]


def build_stage_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context (not --from a stage)."""
    copies = []
    for words in dockerfile_instructions():
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            args = [w for w in words[1:] if not w.startswith("--")]
            copies.append((args[:-1], args[-1]))
    return copies


def test_given_pyproject_packages_when_reading_the_dockerfile_then_each_is_copied() -> None:
    packages: list[str] = PYPROJECT["tool"]["setuptools"]["packages"]
    copied = {s.rstrip("/") for sources, _ in build_stage_copies() for s in sources}
    if "." in copied:
        return  # the whole context: nothing can be left out
    tops = sorted({p.split(".")[0] for p in packages})
    missing = [top for top in tops if top not in copied]
    assert not missing, f"the Dockerfile does not COPY these packages of pyproject.toml: {missing}"
    # Each package where setuptools looks for it: the folder of the same name under /src.
    for sources, dest in build_stage_copies():
        for top in set(sources) & set(tops):
            assert dest.rstrip("/") in (top, f"/src/{top}"), f"COPY {top} {dest}"
    # And the files the build itself reads: pyproject.toml, the readme, the licence.
    project = PYPROJECT["project"]
    for needed in ["pyproject.toml", project["readme"], *project.get("license-files", [])]:
        assert needed in copied, f"the build needs {needed}; the Dockerfile does not COPY it"


def test_given_the_image_when_installing_then_the_lock_decides_the_versions() -> None:
    runs = [" ".join(w[1:]) for w in dockerfile_instructions() if w[:1] == ["RUN"]]
    copied = {s for sources, _ in build_stage_copies() for s in sources}
    assert "requirements.lock" in copied
    assert any("--require-hashes -r requirements.lock" in r for r in runs), runs
    assert any(re.search(r"pip install .*--no-deps /src\b", r) for r in runs), runs
    ignored = (IMAGE / "Dockerfile.dockerignore").read_text().splitlines()
    assert "requirements.lock" not in ignored


def fake_sambung(bin_dir: Path, calls: Path, check_exit: int) -> None:
    """A `sambung` that records its arguments, and fails check-config with ``check_exit``."""
    script = bin_dir / "sambung"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{calls}"\n'
        f'if [ "$1" = check-config ]; then exit {check_exit}; fi\n'
        "exit 0\n"
    )
    script.chmod(0o755)


def run_entrypoint(tmp_path: Path, check_exit: int, *args: str) -> tuple[int, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    calls.touch()
    fake_sambung(bin_dir, calls, check_exit)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        # Given, so the entrypoint has no secret file to turn into it.
        "DATABASE_URL": "postgresql://sambung@127.0.0.1:5432/sambung",
    }
    r = run("sh", ENTRYPOINT, *args, env=env, cwd=tmp_path)
    return r.returncode, calls.read_text().splitlines()


def test_given_good_settings_when_the_image_starts_then_it_checks_migrates_and_runs(
    tmp_path: Path,
) -> None:
    code, calls = run_entrypoint(tmp_path, 0, "run", "-c", "/etc/sambung/other.toml")
    assert code == 0
    assert calls == [
        "check-config -c /etc/sambung/other.toml",
        "migrate",
        "run -c /etc/sambung/other.toml",
    ]


def test_given_bad_settings_when_the_image_starts_then_it_stops_with_check_configs_code(
    tmp_path: Path,
) -> None:
    code, calls = run_entrypoint(tmp_path, 2)
    assert code == 2
    assert calls == ["check-config"]  # neither migrated nor started


def test_given_another_command_when_the_image_runs_it_then_it_is_run_as_given(
    tmp_path: Path,
) -> None:
    code, calls = run_entrypoint(tmp_path, 2, "user", "list")
    assert code == 0
    assert calls == ["user list"]


# ---- the lock files ---------------------------------------------------------------------------


def pins(lock: Path) -> dict[str, str]:
    """name -> pinned version, asserting every pin carries hashes."""
    text = lock.read_text()
    found: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", text):
        m = re.match(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", block)
        if not m:
            continue
        assert "--hash=sha256:" in block, f"{lock.name}: {m.group(1)} has no hash"
        found[canonicalize_name(m.group(1))] = m.group(2)
    assert found, f"{lock.name}: no pins"
    return found


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.lock", []), ("requirements-dev.lock", ["dev"])],
)
def test_given_pyproject_ranges_when_reading_a_lock_then_each_dependency_is_pinned_inside(
    lock: str, extras: list[str]
) -> None:
    project = PYPROJECT["project"]
    wanted = [*project["dependencies"]]
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    pinned = pins(ROOT / lock)
    for line in wanted:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{lock} does not pin {req.name}: regenerate it (CONTRIBUTING.md)"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {req.name}=={pinned[name]}, outside pyproject.toml's {req.specifier}"
        )


def test_given_both_locks_when_compared_then_the_runtime_pins_agree() -> None:
    runtime, dev = pins(ROOT / "requirements.lock"), pins(ROOT / "requirements-dev.lock")
    differ = {n: (v, dev.get(n)) for n, v in runtime.items() if dev.get(n) != v}
    assert not differ, f"requirements-dev.lock must be compiled with -c requirements.lock: {differ}"


def test_given_requires_python_then_it_has_no_upper_cap() -> None:
    spec = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert "3.10" not in spec
    for supported in ("3.11", "3.12", "3.13", "3.14"):
        assert supported in spec, f"requires-python {spec} excludes {supported}"


# ---- one version source -----------------------------------------------------------------------


def test_given_the_installed_metadata_then_it_is_the_only_version_source() -> None:
    written = PYPROJECT["project"]["version"]
    assert version("sambung") == written
    assert sambung.__version__ == written
    literal = re.compile(rf"""["']{re.escape(written)}["']""")
    tops = {p.split(".")[0] for p in PYPROJECT["tool"]["setuptools"]["packages"]}
    repeats = [
        str(f.relative_to(ROOT))
        for top in sorted(tops)
        for f in (ROOT / top).rglob("*.py")
        if literal.search(f.read_text(encoding="utf-8"))
    ]
    assert not repeats, f"the version is written again in {repeats}; read sambung.__version__"


# ---- the console's assets ---------------------------------------------------------------------


def npm_pins() -> dict[str, str]:
    deps: dict[str, str] = json.loads(PACKAGE_JSON.read_text())["dependencies"]
    return deps


def test_given_the_pages_when_listing_their_assets_then_each_is_served_from_the_package() -> None:
    referenced = page_assets()
    assert {"htmx.min.js", "sse.min.js", "console.css", "console.js"} <= referenced
    assert assets.missing_assets() == []
    for name in referenced:
        assert assets.HERE in STATIC_FILES[name].parents, f"{name} is served from outside console/"
        assert "node_modules" not in STATIC_FILES[name].parts


def test_given_the_vendored_htmx_then_it_is_the_version_package_json_pins() -> None:
    text = STATIC_FILES["htmx.min.js"].read_text(encoding="utf-8")
    m = re.search(r'version:"([^"]+)"', text)
    assert m, "htmx.min.js carries no version string"
    assert m.group(1) == npm_pins()["htmx.org"], "refresh console/static/vendor (CONTRIBUTING.md)"
    # Every package npm pins is vendored, and nothing else.
    assert {pkg for pkg, _ in VENDORED.values()} == set(npm_pins())
    for pkg in npm_pins():
        assert (assets.VENDOR / f"{pkg}.LICENSE").is_file(), f"{pkg}'s licence is not vendored"


def test_given_npm_installed_the_pinned_packages_then_the_vendored_files_are_their_bytes() -> None:
    if not NODE_MODULES.is_dir():
        pytest.skip("console/web/node_modules is absent (ops/lib.sh ensure_web_assets installs it)")
    for name, (pkg, inner) in VENDORED.items():
        installed = json.loads((NODE_MODULES / pkg / "package.json").read_text())["version"]
        assert installed == npm_pins()[pkg], f"node_modules has {pkg} {installed}: run npm ci"
        upstream = (NODE_MODULES / pkg / inner).read_bytes()
        assert STATIC_FILES[name].read_bytes() == upstream, (
            f"console/static/vendor/{name} is not {pkg} {installed}'s {inner}: copy it again"
        )
        assert (assets.VENDOR / f"{pkg}.LICENSE").read_bytes() == (
            NODE_MODULES / pkg / "LICENSE"
        ).read_bytes()


def test_given_a_missing_page_asset_when_starting_then_the_engine_refuses_naming_it(
    tmp_path: Path,
) -> None:
    files = {**STATIC_FILES, "htmx.min.js": tmp_path / "htmx.min.js"}
    with pytest.raises(MissingAsset) as caught:
        check_assets(files)
    assert caught.value.error_id == "console.asset_missing"
    assert "/static/htmx.min.js" in caught.value.detail
    assert str(tmp_path / "htmx.min.js") in caught.value.detail
    check_assets()  # the tree as it is: complete


def test_given_a_missing_page_asset_when_checking_the_config_then_it_fails_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sambung.engine.cli import EXIT_RUNTIME, main

    monkeypatch.setattr(assets, "STATIC_FILES", {**STATIC_FILES, "sse.min.js": tmp_path / "x"})
    assert main(["check-config", "-c", str(ROOT / "examples" / "sambung.toml")]) == EXIT_RUNTIME
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("sambung: console.asset_missing:")
    assert "sse.min.js" in err[0]


# ---- the wheel, installed in a fresh virtualenv -----------------------------------------------


def installed_files(site: Path) -> Mapping[str, Path]:
    """Where the installed package keeps each file the engine serves under /static/."""
    here = site / "sambung" / "console"
    return {name: here / p.relative_to(assets.HERE) for name, p in STATIC_FILES.items()}


def install_wheel(tmp: Path, *, with_dependencies: bool = False) -> tuple[Path, Path]:
    """Build the wheel from this tree and install it, alone, into a fresh virtualenv under
    ``tmp``; return the virtualenv and its site-packages. ``with_dependencies``: the
    dependencies come from the running test's own environment (a plain path line: its .pth
    files, among them the checkout's editable hook, are not run), so the package itself is
    only the wheel's, without a download of every dependency."""
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", ROOT)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("sambung-*.whl")
    venv = tmp / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    # This interpreter's pip installs into the new one: no pip download, no index.
    put = run(
        sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index",
        wheel,
    )  # fmt: skip
    assert put.returncode == 0, put.stderr[-3000:]
    site = Path(
        run(
            python, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        ).stdout.strip()
    )
    assert site.is_dir()
    if with_dependencies:
        (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv, site


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the fresh virtualenv, its site-packages) with the wheel built from this tree in it."""
    return install_wheel(tmp_path_factory.mktemp("wheel"), with_dependencies=True)


def test_given_the_installed_wheel_then_every_page_asset_is_in_the_package(
    installed_wheel: tuple[Path, Path],
) -> None:
    _, site = installed_wheel
    referenced = page_assets(site / "sambung" / "console" / "templates")
    assert referenced == page_assets(), "the installed templates differ from the tree's"
    assert assets.missing_assets(referenced, installed_files(site)) == []
    for pkg in npm_pins():
        assert (site / "sambung" / "console" / "static" / "vendor" / f"{pkg}.LICENSE").is_file()
    (dist_info,) = site.glob("sambung-*.dist-info")
    assert list(dist_info.rglob("LICENSE")), "the wheel carries no LICENSE"


def test_given_the_installed_wheel_when_imported_then_it_serves_its_own_files(
    installed_wheel: tuple[Path, Path], tmp_path: Path
) -> None:
    venv, site = installed_wheel
    probe = (
        "import json, sambung, sambung.console.assets as a; a.check_assets();"
        "print(json.dumps({'version': sambung.__version__, 'here': str(a.HERE),"
        " 'files': {n: str(p) for n, p in a.STATIC_FILES.items()}}))"
    )
    # -I: no current directory or PYTHONPATH on the path, so the checkout cannot stand in.
    r = run(venv / "bin" / "python", "-I", "-c", probe, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    seen = json.loads(r.stdout)
    assert seen["version"] == PYPROJECT["project"]["version"]
    assert Path(seen["here"]) == site / "sambung" / "console"
    assert all(Path(p).is_file() and site in Path(p).parents for p in seen["files"].values())
    r = run(venv / "bin" / "sambung", "--version", cwd=tmp_path, env={"PATH": os.defpath})
    assert (r.returncode, r.stdout.strip()) == (0, f"sambung {seen['version']}"), r.stderr
