"""What every part of reading one flow file shares: the ``Reader``.

``Reader`` holds the settings the file is checked against (queues, sound folders, shared
calendars, the environment) and what reading finds on the way: the problems, the references
to other nodes and the graph's edges (checked once all nodes are read), the prompts used.
``At`` says where a value is (node, key path, line), ``Obj`` reads one mapping key by key
with its unknown and missing keys reported, and ``ValueReader`` is the shape of every value
reader: ``(reader, value, at) -> converted value``, or None with a problem recorded.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sambung.engine.calendars import HolidayCalendar
from sambung.ivr.errors import FlowProblem
from sambung.ivr.loader_yaml import YamlMap, parse, paths
from sambung.ivr.model import SayNode

__all__ = [
    "DEFAULT_LANGUAGES",
    "At",
    "Obj",
    "Reader",
    "ValueReader",
    "at_path",
    "close",
    "did_you_mean",
    "show",
]

T = TypeVar("T")

# A reader checks one value and returns it converted, or records a problem and returns None.
ValueReader = Callable[["Reader", Any, "At"], T | None]

# The languages a flow speaks when it does not say.
DEFAULT_LANGUAGES: tuple[str, ...] = ("id", "en")


@dataclass(frozen=True, slots=True)
class At:
    """Where a value is: node id ("" for the flow's own keys), key path, line."""

    node: str
    key: str
    line: int | None

    def child(self, part: str | int, line: int | None = None) -> At:
        if isinstance(part, int):
            key = f"{self.key}[{part}]"
        else:
            key = f"{self.key}.{part}" if self.key else part
        return At(self.node, key, line if line is not None else self.line)


def at_path(path: Sequence[str | int], line: int | None) -> At:
    """The location of a value at ``path`` from the top of a flow file."""
    if len(path) >= 2 and path[0] == "nodes":
        at = At(str(path[1]), "", line)
        rest = path[2:]
    else:
        at = At("", "", line)
        rest = path
    for part in rest:
        at = at.child(part, line)
    return at


def show(v: Any) -> str:
    """A value as a problem quotes it."""
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "a mapping" if v else "an empty mapping"
    if isinstance(v, list):
        return "a list" if v else "an empty list"
    if isinstance(v, int | float):
        return f"the number {v}"
    return repr(v)


def close(word: str, choices: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    guess = close(word, choices)
    return f" (did you mean {guess!r}?)" if guess else ""


class Reader:
    """The state of reading one flow file (and the holiday files it includes)."""

    def __init__(
        self,
        path: Path,
        known_queues: Collection[str],
        sound_dirs: Mapping[str, Sequence[Path]] | None,
        max_menu_depth: int,
        calendars: Mapping[str, HolidayCalendar] | None = None,
        unknown_days_open: Collection[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        self.environ = os.environ if environ is None else environ
        # Shared holiday calendars by name; None: the flow names none (tests of one flow).
        self.calendars = calendars
        self.unknown_days_open = unknown_days_open
        self.file = str(path)
        self.known_queues = known_queues
        self.sound_dirs = sound_dirs
        self.max_menu_depth = max_menu_depth
        self.errors: list[FlowProblem] = []
        self.warnings: list[FlowProblem] = []
        self.refs: list[tuple[At, str]] = []  # target node references, checked at the end
        self.edges: dict[str, list[str]] = {}  # node -> targets (the flow graph)
        self.prompt_uses: list[tuple[str, At]] = []  # sound names, where used
        self.kinds: dict[str, str] = {}  # node id -> kind ("" when unknown)
        self.node_lines: dict[str, int] = {}
        self.broken: set[str] = set()  # nodes that failed to read: no graph conclusions
        self.languages: tuple[str, ...] = DEFAULT_LANGUAGES
        self.calendar_names: set[str] = set()
        self.hasher = hashlib.sha256()
        self.say_nodes: list[tuple[SayNode, At]] = []
        self.zero_out: tuple[str | None, str | None] = (None, None)  # (key, target node)

    def err(self, at: At, expected: str, file: str | None = None) -> None:
        self.errors.append(FlowProblem(file or self.file, at.node, at.key, expected, at.line))

    def warn(self, at: At, expected: str) -> None:
        self.warnings.append(FlowProblem(self.file, at.node, at.key, expected, at.line))

    def in_file_order(self, problems: list[FlowProblem]) -> list[FlowProblem]:
        """The flow file's problems by line, then those of included files: the order to fix
        them in (found in another order: graph checks come last)."""
        return sorted(problems, key=lambda p: (p.file != self.file, p.file, p.line or 0))

    def parse_yaml(self, path: Path, file: str, at: At | None) -> Any:
        """The document in ``path``; None (with a problem recorded) when it cannot be read.

        ``at`` is where the flow names an included file (None for the flow file itself).
        """
        try:
            raw = path.read_bytes()
        except OSError as err:
            if at is None:
                self.err(At("", "", None), f"cannot read the file ({err.strerror})")
            else:
                self.err(at, f"cannot read the holiday file {file} ({err.strerror})")
            return None
        # The version: the flow file's bytes, then each included file's, in order.
        self.hasher.update(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            self.err(
                At("", "", None), f"expected UTF-8 text ({err.reason} at byte {err.start})", file
            )
            return None
        try:
            data, duplicates = parse(text)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = int(mark.line) + 1 if mark is not None else None
            what = " ".join(p for p in (err.context, err.problem) if p)
            if "alias" in what or "anchor" in what:
                what += " (quote * and # keys: '*', '#')"
            col = f", column {int(mark.column) + 1}" if mark is not None else ""
            self.err(At("", "", line), f"invalid YAML: {what}{col}", file)
            return None
        except yaml.YAMLError as err:
            self.err(At("", "", None), f"invalid YAML: {err}", file)
            return None
        where = {i: p for i, p in paths(data)}
        for dup in duplicates:
            path_to = where.get(id(dup.mapping), ())
            at_dup = at_path((*path_to, str(dup.key)), dup.line)
            if path_to == ("nodes",):
                msg = f"defined twice (first at line {dup.first}); YAML would keep only one"
            else:
                msg = f"given twice (first at line {dup.first}); YAML would keep only one"
            self.err(at_dup, msg, file)
        return data


class Obj:
    """A YAML mapping being read as one thing: unknown keys (typos) and missing ones reported
    when it is opened; ``take`` reads a key with a value reader."""

    def __init__(
        self,
        r: Reader,
        data: YamlMap,
        at: At,
        what: str,
        required: Sequence[str],
        optional: Sequence[str] = (),
    ) -> None:
        self.r, self.data, self.at = r, data, at
        allowed = (*required, *optional)
        suggested: set[str] = set()
        for k, line in data.lines.items():
            if k in allowed:
                continue
            k_at = at.child(str(k), line)
            if not isinstance(k, str):
                r.err(k_at, f"unknown key {show(k)}: {what} takes {', '.join(allowed)}")
                continue
            guess = close(k, allowed)
            if guess is not None:
                suggested.add(guess)
                r.err(k_at, f"unknown key {k!r} (did you mean {guess!r}?)")
            else:
                r.err(k_at, f"unknown key {k!r}: {what} takes {', '.join(allowed)}")
        for k in required:
            if k not in data and k not in suggested:
                r.err(at.child(k, data.line), f"missing (required in {what})")

    def has(self, key: str) -> bool:
        return key in self.data

    def at_(self, key: str) -> At:
        return self.at.child(key, self.data.lines.get(key, self.data.line))

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def take(self, key: str, read: ValueReader[T], default: T | None = None) -> T | None:
        if key not in self.data:
            return default
        return read(self.r, self.data[key], self.at_(key))
