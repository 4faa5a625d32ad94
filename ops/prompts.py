#!/usr/bin/env python3
"""Generate the IVR's prompts with espeak-ng and sox into an Asterisk sounds tree.

    python3 ops/prompts.py --sounds-root <tree>/usr/share/asterisk/sounds --english-dir <en dir>

Standard library only: ops/sandbox runs it with the host's python3, before any venv exists.

What it makes (8 kHz mono 16-bit WAV, the format Asterisk plays without transcoding):
  * NUMBERS below: the Indonesian number words the ``say`` node composes amounts from
    (``sambung/num/*`` in the ``id`` folder, the set ``sambung/ivr/speech.py`` declares; a unit test
    keeps the two equal) and ``sambung/rupiah`` in English and Indonesian. They are said back
    to back, so their leading and trailing silence is trimmed.
  * the flows' catalogue, examples/flows/prompts.yaml (or --catalogue FILE): prompt name ->
    {language: sentence}.
ops/sandbox's own prompts (welcome, unknown-number, ...) stay its business.

A prompt name is the ``sound:`` name without the scheme or extension (``sambung/main-menu``);
the file is ``<language folder>/<name>.wav``. English goes to --english-dir (Debian's
``sounds/en`` is an absolute symlink that only resolves inside the tree); any other language
to ``<sounds-root>/<language>``. The voice is espeak-ng's ``-v <language>``.

A file is generated only when missing or when its sentence (or the recipe) changed. Each
language folder keeps ``sambung/.prompts-manifest.json``: per file, a hash of what it was made
from and a hash of the file as written. A file that is there but not in the manifest, or whose
content no longer matches it (a real recording put in its place), is not ours and is left
alone. Prints one line: generated N, kept M.

The catalogue is JSON (``.json``) or this subset of YAML, which reads the same in PyYAML:
    # comments, blank lines
    sambung/main-menu:                  a prompt name at column 0, ending in ':'
      en: For your balance, press 1.    one line per language, indented by spaces
      id: "Untuk saldo, tekan 1."       plain, 'single' or "double" quoted (JSON escapes)
A long sentence may go on over more lines indented deeper than its language key (folded with
one space, as YAML does). Nothing else: no tabs, lists, flow {...}, anchors, block scalars
(| >), and no plain sentence that YAML would read as something else (yes, no, null, 12, a
': ' or ' #' inside, a leading indicator such as '-', '[', '*'): quote those.

Exit status: 0 done, 1 espeak-ng or sox failed, 2 a bad catalogue or argument.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CATALOGUE = ROOT / "examples" / "flows" / "prompts.yaml"
MANIFEST = "sambung/.prompts-manifest.json"
SPEED = 150  # words per minute, as ops/sandbox's own prompts
# Part of every file's source hash: change how files are made, bump it, and all are made again.
RECIPE = "espeak-ng -s 150 | sox -r 8000 -c 1 -b 16 | trim v1"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Za-z]{2})?")

Catalogue = dict[str, dict[str, str]]

# Kept here rather than in a data folder ops/prompts/: mypy would take such a folder for the
# module ops.prompts and stop seeing this file. The set ivr/speech.py declares (a test checks).
NUMBER_WORDS = (
    "nol",
    "satu",
    "dua",
    "tiga",
    "empat",
    "lima",
    "enam",
    "tujuh",
    "delapan",
    "sembilan",
    "sepuluh",
    "sebelas",
    "seratus",
    "seribu",
    "belas",
    "puluh",
    "ratus",
    "ribu",
    "juta",
    "miliar",
    "triliun",
)
NUMBERS: Catalogue = {
    **{f"sambung/num/{w}": {"id": w} for w in NUMBER_WORDS},
    "sambung/rupiah": {"en": "rupiah", "id": "rupiah"},
}
# voice, text, trim (words said back to back), destination .wav: writes the file.
Synthesiser = Callable[[str, str, bool, Path], None]


class CatalogueError(ValueError):
    """A catalogue that cannot be read: the message names the file, the line and what was wrong."""


class SynthesisError(RuntimeError):
    pass


@dataclass(frozen=True)
class Prompt:
    name: str  # sambung/num/satu
    language: str  # id
    text: str  # the sentence espeak-ng says
    trim: bool = False

    @property
    def source_hash(self) -> str:
        recipe = [RECIPE, self.language, SPEED, self.trim, self.text]
        return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()


@dataclass
class Outcome:
    generated: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    not_ours: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        line = f"prompts: generated {len(self.generated)}, kept {len(self.kept)}"
        if self.not_ours:
            line += f" (of which {len(self.not_ours)} not ours, left alone)"
        return line


# ---- catalogues ---------------------------------------------------------------------------


def load_catalogue(path: Path) -> Catalogue:
    """Read a JSON or simple-YAML catalogue (see the module's docstring) and check it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CatalogueError(f"{path}: cannot read: {err}") from err
    if path.suffix == ".json":
        try:
            data: object = json.loads(text)
        except json.JSONDecodeError as err:
            raise CatalogueError(f"{path}:{err.lineno}: not JSON: {err.msg}") from err
    else:
        data = parse_simple_yaml(text, str(path))
    return check_catalogue(data, str(path))


def check_catalogue(data: object, source: str) -> Catalogue:
    if not isinstance(data, dict):
        raise CatalogueError(f"{source}: expected a mapping of prompt name -> {{language: text}}")
    out: Catalogue = {}
    for name, sentences in data.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
            raise CatalogueError(
                f"{source}: prompt {name!r}: expected a sound name such as sambung/main-menu "
                "(letters, digits, '-', '_', '.', folders with '/', no extension)"
            )
        if name.endswith((".wav", ".gsm", ".ulaw", ".alaw", ".sln")):
            raise CatalogueError(f"{source}: prompt {name!r}: name it without the extension")
        if not isinstance(sentences, dict) or not sentences:
            raise CatalogueError(f"{source}: prompt {name!r}: expected {{language: sentence}}")
        checked: dict[str, str] = {}
        for lang, text in sentences.items():
            if not isinstance(lang, str) or not _LANGUAGE.fullmatch(lang):
                raise CatalogueError(
                    f"{source}: prompt {name!r}: language {lang!r}: expected a code like en or id"
                )
            if not isinstance(text, str) or not text.strip():
                raise CatalogueError(
                    f"{source}: prompt {name!r}, {lang}: expected a sentence, got {text!r}"
                )
            checked[lang] = " ".join(text.split())
        out[name] = checked
    return out


# A plain scalar YAML would not read as a string, or would not read as one line.
_NOT_A_STRING = re.compile(
    r"(?i:yes|no|true|false|on|off|null|~)|[-+]?(\.?[0-9][0-9_.:eE+-]*|\.inf|\.nan)"
)
_INDICATORS = tuple("-?:,[]{}#&*!|>'\"%@`")


def parse_simple_yaml(text: str, source: str) -> dict[str, dict[str, str]]:
    """The two-level mapping subset of YAML described in the module's docstring."""
    out: dict[str, dict[str, str]] = {}
    name: str | None = None
    inner_indent: int | None = None
    last: tuple[str, str, int] | None = None  # (name, language, line) of a plain sentence
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{source}:{number}"
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise CatalogueError(f"{where}: indent with spaces, not tabs")
        line = raw.rstrip()
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            last = None  # YAML ends a plain sentence here; a deeper line after it is an error
            continue
        if stripped in ("---", "..."):
            raise CatalogueError(f"{where}: one document only (no '---' or '...')")
        indent = len(line) - len(stripped)
        if indent == 0:
            key, rest = _split_key(stripped, where)
            if rest:
                raise CatalogueError(
                    f"{where}: expected 'name:' alone on its line with its languages below"
                )
            if key in out:
                raise CatalogueError(f"{where}: prompt {key!r} appears twice")
            name, inner_indent, last = key, None, None
            out[key] = {}
            continue
        if name is None:
            raise CatalogueError(f"{where}: indented line before any prompt name")
        if inner_indent is None:
            inner_indent = indent
        if indent > inner_indent and last is not None and last[0] == name:
            # a plain sentence going on over the next line: YAML folds it with one space
            lang = last[1]
            out[name][lang] += " " + _plain(stripped, where)
            continue
        if indent != inner_indent:
            raise CatalogueError(
                f"{where}: expected {inner_indent} spaces before the language of {name!r}"
            )
        lang, rest = _split_key(stripped, where)
        if lang in out[name]:
            raise CatalogueError(f"{where}: language {lang!r} appears twice in {name!r}")
        if not rest:
            raise CatalogueError(f"{where}: expected '{lang}: <sentence>' on one line")
        if rest[0] in "'\"":
            out[name][lang] = _quoted(rest, where)
            last = None
        else:
            out[name][lang] = _plain(rest, where)
            last = (name, lang, number)
    for key, sentences in out.items():
        if not sentences:
            raise CatalogueError(f"{source}: prompt {key!r} has no sentences")
    return out


def _split_key(stripped: str, where: str) -> tuple[str, str]:
    key, sep, rest = stripped.partition(":")
    if not sep or (rest and not rest.startswith(" ")):
        raise CatalogueError(f"{where}: expected 'key:' or 'key: value'")
    key = key.strip()
    if not key or key.startswith(_INDICATORS) or " " in key:
        raise CatalogueError(f"{where}: {key!r} is not a plain key (no quotes, spaces, lists)")
    if _NOT_A_STRING.fullmatch(key):
        raise CatalogueError(f"{where}: YAML reads the key {key!r} as a number or boolean")
    return key, _drop_comment(rest.strip())


def _drop_comment(value: str) -> str:
    if value.startswith(("'", '"')):
        return value  # a comment after a quoted sentence is handled by _quoted
    return "" if value.startswith("#") else value.split(" #", 1)[0].rstrip()


def _plain(value: str, where: str) -> str:
    value = _drop_comment(value)
    if value.startswith(_INDICATORS) or value.startswith(" "):
        raise CatalogueError(f"{where}: {value!r} starts with a YAML indicator: quote it")
    if ": " in value or value.endswith(":"):
        raise CatalogueError(f"{where}: {value!r} holds ': ' (YAML reads a mapping): quote it")
    if _NOT_A_STRING.fullmatch(value):
        raise CatalogueError(f"{where}: YAML reads {value!r} as a number or boolean: quote it")
    return value


def _quoted(value: str, where: str) -> str:
    quote = value[0]
    if quote == "'":
        m = re.fullmatch(r"'((?:[^']|'')*)'\s*(#.*)?", value)
        if m is None:
            raise CatalogueError(f"{where}: unterminated 'single-quoted' sentence (one line)")
        return m.group(1).replace("''", "'")
    m = re.fullmatch(r'("(?:[^"\\]|\\.)*")\s*(#.*)?', value)
    if m is None:
        raise CatalogueError(f'{where}: unterminated "double-quoted" sentence (one line)')
    try:
        decoded = json.loads(m.group(1))
    except json.JSONDecodeError as err:
        raise CatalogueError(f"{where}: escape outside JSON's set: {err.msg}") from err
    assert isinstance(decoded, str)
    return decoded


def prompts_of(catalogue: Catalogue, *, trim: bool = False) -> list[Prompt]:
    return [
        Prompt(name, lang, text, trim)
        for name, sentences in catalogue.items()
        for lang, text in sentences.items()
    ]


# ---- synthesis ----------------------------------------------------------------------------


def espeak_synthesise(voice: str, text: str, trim: bool, dest: Path) -> None:
    """espeak-ng into a temporary WAV, then sox to 8 kHz mono 16-bit at ``dest``."""
    # Trim to about 60 ms of silence each side: number words are played back to back.
    trimming = ["silence", "1", "0.02", "0.5%", "reverse"] * 2 + ["pad", "0.06", "0.06"]
    with tempfile.TemporaryDirectory(prefix="sambung-prompt-") as tmp:
        raw = Path(tmp) / "espeak.wav"
        # The text goes on stdin: a sentence starting with '-' is not an option there.
        _run(["espeak-ng", "-v", voice, "-s", str(SPEED), "-w", str(raw), "--stdin"], text)
        sox = ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-t", "wav", str(dest)]
        _run([*sox, *(trimming if trim else [])], None)


def _run(argv: list[str], stdin: str | None) -> None:
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except OSError as err:
        raise SynthesisError(f"cannot run {argv[0]}: {err}") from err
    if done.returncode != 0:
        raise SynthesisError(
            f"{argv[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
        )


# ---- the tree -----------------------------------------------------------------------------


def language_dir(language: str, sounds_root: Path, english_dir: Path) -> Path:
    return english_dir if language == "en" else sounds_root / language


def sync(
    prompts: Iterable[Prompt],
    dirs: Callable[[str], Path],
    synthesise: Synthesiser = espeak_synthesise,
) -> Outcome:
    """Make every prompt's file that is missing or stale; leave the rest (and others') alone."""
    outcome = Outcome()
    by_dir: dict[Path, list[Prompt]] = {}
    for p in prompts:
        by_dir.setdefault(dirs(p.language), []).append(p)
    for folder, group in by_dir.items():
        manifest = _Manifest(folder / MANIFEST)
        for p in group:
            rel = f"{p.name}.wav"
            dest = folder / rel
            entry = manifest.entries.get(rel)
            if dest.is_file() and dest.stat().st_size > 0:
                if entry is None or entry.get("file") != _file_hash(dest):
                    # A recording, or ops/sandbox's own prompt: not ours to overwrite.
                    manifest.forget(rel)
                    outcome.kept.append(dest)
                    outcome.not_ours.append(dest)
                    continue
                if entry.get("source") == p.source_hash:
                    outcome.kept.append(dest)
                    continue
            _make_dirs(folder, dest.parent)
            tmp = dest.with_name(f".{dest.stem}.{os.getpid()}.tmp.wav")
            try:
                synthesise(p.language.split("_")[0], p.text, p.trim, tmp)
                _match_owner(folder, tmp)
                os.chmod(tmp, 0o644)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
            manifest.record(
                rel, {"source": p.source_hash, "file": _file_hash(dest), "text": p.text}
            )
            outcome.generated.append(dest)
    return outcome


class _Manifest:
    """``{file: {source, file, text}}``, written after every change (a crash loses nothing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, str]] = {}
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("files"), dict):
                self.entries = {k: v for k, v in data["files"].items() if isinstance(v, dict)}

    def record(self, rel: str, entry: dict[str, str]) -> None:
        self.entries[rel] = entry
        self._save()

    def forget(self, rel: str) -> None:
        if self.entries.pop(rel, None) is not None:
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "about": "made by ops/prompts.py; a file listed here is regenerated when its "
            "sentence changes, unless its content no longer matches (then it is left alone)",
            "files": dict(sorted(self.entries.items())),
        }
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o644)
        _match_owner(self.path.parent, tmp)
        os.replace(tmp, self.path)


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_dirs(folder: Path, parent: Path) -> None:
    """Create ``parent`` under ``folder``, each new folder owned like ``folder`` (Asterisk's)."""
    missing: list[Path] = []
    p = parent
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=0o755)
        os.chmod(d, 0o755)
        _match_owner(folder, d)


def _match_owner(folder: Path, path: Path) -> None:
    # Running as root: give new files the language folder's owner (the tree's asterisk user),
    # so Asterisk can read them without waiting for ops/sandbox's chown at the next start.
    if os.geteuid() == 0 and folder.exists():
        st = folder.stat()
        os.chown(path, st.st_uid, st.st_gid)


@contextlib.contextmanager
def _locked(sounds_root: Path) -> Iterator[None]:
    # Two `ops/sandbox up` at once must not interleave their manifests.
    with open(sounds_root / ".sambung-prompts.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


# ---- command line -------------------------------------------------------------------------


def build_prompts(numbers: Catalogue, catalogue: Path | None) -> list[Prompt]:
    prompts = prompts_of(check_catalogue(numbers, "NUMBERS"), trim=True)
    if catalogue is not None:
        prompts += prompts_of(load_catalogue(catalogue))
    return prompts


def main(argv: list[str] | None = None, synthesise: Synthesiser = espeak_synthesise) -> int:
    parser = argparse.ArgumentParser(
        description="Generate the IVR's prompts (espeak-ng + sox, 8 kHz mono WAV) into an "
        "Asterisk sounds tree; only missing or changed ones."
    )
    parser.add_argument(
        "--sounds-root",
        type=Path,
        required=True,
        help="Asterisk's sounds folder, e.g. <tree>/usr/share/asterisk/sounds",
    )
    parser.add_argument(
        "--english-dir",
        type=Path,
        required=True,
        help="the folder `sounds/en` resolves to (inside the tree)",
    )
    parser.add_argument(
        "--catalogue",
        type=Path,
        default=None,
        help=f"prompt catalogue, YAML subset or .json (default: "
        f"{DEFAULT_CATALOGUE.relative_to(ROOT)} when it exists)",
    )
    args = parser.parse_args(argv)
    sounds_root: Path = args.sounds_root
    english_dir: Path = args.english_dir
    for label, d in (("--sounds-root", sounds_root), ("--english-dir", english_dir)):
        if not d.is_dir():
            print(f"prompts: {label} {d} is not a folder", file=sys.stderr)
            return 2
    catalogue: Path | None = args.catalogue
    if catalogue is None and DEFAULT_CATALOGUE.is_file():
        catalogue = DEFAULT_CATALOGUE
    try:
        prompts = build_prompts(NUMBERS, catalogue)
    except CatalogueError as err:
        print(f"prompts: {err}", file=sys.stderr)
        return 2
    dirs = {p.language: language_dir(p.language, sounds_root, english_dir) for p in prompts}
    for lang, d in sorted(dirs.items()):
        # Debian's sounds/en_US and the like are absolute symlinks meant for inside the tree;
        # followed from here they dangle or, worse, point into the host's own /etc.
        if d.is_symlink():
            print(f"prompts: language {lang!r}: {d} is a symlink; not supported", file=sys.stderr)
            return 2
    try:
        with _locked(sounds_root):
            outcome = sync(prompts, dirs.__getitem__, synthesise)
    except SynthesisError as err:
        print(f"prompts: {err}", file=sys.stderr)
        return 1
    source = f"numbers + {catalogue}" if catalogue else "numbers only (no catalogue)"
    print(f"{outcome.summary()} [{source}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
