"""Flow files (YAML) into ``ivr.model.Flow``, validated; every problem names file, node and key.

    flow = load_flow(path, known_queues={"collections"}, sound_dirs=dirs, max_menu_depth=4)
    flows = load_flows(paths, known_queues=..., sound_dirs=..., max_menu_depth=4)
    flows["1500"]          # FlowSet maps DID -> Flow; flows.warnings for the engine to log

A file with problems raises :class:`ivr.errors.FlowError` holding *all* of them (each
``file:line: node 'x': key: what is wrong``); nothing of it is loaded.

The format
==========
A complete example (``examples/flows/collections.yaml`` is a real one)::

    flow: collections                # name: metrics, facts, logs (letters, digits, - _ .)
    dids: ["1500"]                   # the numbers that reach it; quoted (YAML reads 0215 as octal)
    languages: [id, en]              # default [id, en]; prompts fall back to English
    default_language: id             # default id; must be one of languages
    start: language                  # the first node
    zero_out: {key: "0", goto: agent}  # on every menu (unless the menu says zero_out: false);
                                     # leave it out for none
    calendars:
      office:
        timezone: Asia/Jakarta       # an IANA name
        hours:                       # weekdays (mon..sun, ranges mon-fri, lists sat,sun)
          mon-fri: "08:00-17:00"     #   -> one range or a list of ranges, end exclusive;
          sat: ["08:00-12:00"]       #   "24:00" ends at midnight; a day not listed is closed
        holiday_calendar: id-national  # a calendar from the settings' [calendars] (the
                                     # holidays package + override files); default id-national
        holidays: ["2026-12-31"]     # optional: the hotline's own closing days, dates or
                                     # holiday files (relative to this file)
    nodes:                           # node id -> node, in any order
      language:
        type: menu
        prompts: [sambung/choose-language]   # no scheme means sound:<name>
        options: {"1": set_id, "2": set_en}  # single DTMF keys: 0-9 * # A-D (quote * and #)
        timeout: 5                   # seconds after the prompts end; default 5
        repeat_key: "9"              # optional: plays the menu again without using an attempt
        zero_out: false              # default true (when the flow has a zero_out)
        retry: {attempts: 3, no_input: [sambung/no-input], invalid: [sambung/invalid],
                on_failure: set_id}  # all optional; attempts 3, no on_failure = hang up
      set_id: {type: set, values: {language: id}, next: hours}
      set_en: {type: set, values: {language: en}, next: hours}
      hours:
        type: condition
        branches:                    # the first that holds wins
          - {when: {business_hours: office}, goto: main}
          - {when: {attr: caller_number, in: ["0811111111"]}, goto: main}
        otherwise: closed
      main:
        type: menu
        prompts: [sambung/main-menu]
        options: {"1": account, "2": agent}
      account:
        type: input
        prompts: [sambung/enter-account]
        store_as: account            # the call attribute the digits go to
        min_length: 6                # default 1
        max_length: 10               # default 20; reaching it ends the input
        terminator: "#"              # default "#"; "*" or false (none)
        first_digit_timeout: 6       # default 5
        inter_digit_timeout: 3       # default 3
        pattern: "[0-9]{6,10}"       # optional; a full match over the digits
        sensitive: false             # default false; true: the digits are never stored in
                                     # ivr_steps or the session's attributes, never logged
                                     # (the call keeps them: a lookup, the agent's screen)
        retry: {invalid: [sambung/invalid-account], on_failure: main}
        next: lookup
      lookup:
        type: lookup
        url: "http://127.0.0.1:8490/accounts/{account}"   # {attribute}s: see below
        headers:                     # optional; each value from an environment variable,
          Authorization: {env: CRM_AUTH}     # read at load: unset is an error. Never a
                                     # literal (flow files are not secret), never in the URL
        timeout: 2                   # seconds per attempt; default 3
        retries: 1                   # default 1 (two attempts in all)
        store_prefix: crm_           # the answer's fields become crm_<field>; default ""
        next: say_amount
        on_failure: lookup_failed
      say_amount:
        type: say
        kind: money                  # number, digits or money (rupiah)
        value: crm_amount_due        # the attribute said
        before: [sambung/amount-due-is]      # optional
        after: []                    # optional
        next: main
      lookup_failed: {type: play, prompts: [sambung/lookup-failed], next: main}
                                     # play: barge_in (default true) lets a key skip ahead
      agent: {type: transfer, queue: collections, prompts: [sambung/transferring]}
      closed: {type: hangup, prompts: [sambung/after-hours], reason: after_hours}
                                     # hangup: prompts optional, reason default ivr_completed

Conditions (``when``): ``{business_hours: <calendar>}``, ``{holiday: <calendar>}``,
``{attr: x, equals: v}``, ``{attr: x, in: [v, ...]}``, ``{attr: x, present: true}``.
Prompts: a bare name is ``sound:<name>``; ``sound:``, ``digits:``, ``number:``,
``characters:``, ``tone:`` and ``recording:`` media are kept as given.

A lookup's ``{attribute}`` is caller data: each value becomes one path segment, every
character but ``A-Z a-z 0-9 - . _ ~`` percent-encoded (``/`` too); a path segment holding caller
data that is empty, or is (or decodes to) ``.`` or ``..``, is refused: no request, the lookup
goes to ``on_failure`` and its step records ``lookup_failed`` with ``<reason>:<attribute>``
(``ivr/urls.py``).

A holiday file::

    name: Indonesia 2026             # optional
    source: SKB 3 Menteri ...        # optional: where the dates come from
    holidays:
      "2026-01-01": Tahun Baru 2026 Masehi   # date -> what it is; a date twice is an error

YAML parsing differs from plain PyYAML in three ways, all to catch mistakes: a key twice in a
mapping is an error (YAML keeps the last silently), dates stay text (read here as
YYYY-MM-DD), and a ``null`` where a key is expected is refused (``terminator: #`` is a comment:
quote "#").

The checks
==========
Per file, all collected: YAML syntax (with the line), unknown or missing keys (with "did you
mean"), wrong types and ranges, unknown node kinds, unknown target nodes, unknown queues (not in
``known_queues``), unknown calendars, time ranges, weekday names and time zones, unreadable or
invalid holiday files, regular expressions, min_length > max_length, keys that are not single
DTMF keys, an option on the repeat key or on the zero-out key (when the menu zero-outs), a set
``language`` the flow does not speak, URL templates; then on the graph:

* unreachable nodes: not reachable from ``start`` (the zero-out key is an edge from every menu
  that has it);
* loops with no exit: nodes from which no ``hangup`` or ``transfer`` node can be reached (the
  hang-up after a menu's attempts run out is a failure, not an exit); reported once per loop;
* menus nested deeper than ``max_menu_depth``: the most distinct menus along one path from
  ``start``, each menu counted once per path (so "back to the main menu" does not deepen it).

Prompts (unless ``sound_dirs`` is None): every ``sound:`` prompt that is not an absolute path
must exist as ``<dir>/<name>.<ext>`` (wav, gsm, ulaw, alaw, sln, g722, sln16, wav16) in the
English folders (Asterisk's fallback): missing there is an error; missing in another of the
flow's languages is a warning (the prompt plays in English), once per prompt and language.
A ``say`` node also needs ``sambung/rupiah`` (money) and, when the flow speaks Indonesian, our
Indonesian number words (``sambung/num/*``), which have no English fallback: missing is an error.

``Flow.version`` is the sha256 of the file and of the holiday files it includes, in order;
``Flow.source`` the path as given.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import string
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml

from engine.calendars import HolidayCalendar
from ivr.errors import FlowError, FlowProblem
from ivr.model import (
    AttrEquals,
    AttrIn,
    AttrPresent,
    Branch,
    Calendar,
    Condition,
    ConditionNode,
    EnvHeader,
    Flow,
    HangupNode,
    InBusinessHours,
    InputNode,
    IsHoliday,
    LookupNode,
    MenuNode,
    Node,
    OpenSpan,
    PlayNode,
    Retry,
    SayKind,
    SayNode,
    SetNode,
    TransferNode,
)
from ivr.speech import (
    INDONESIAN_NUMBER_WORDS,
    NUMBER_PROMPT_DIR,
    RUPIAH_PROMPT,
    indonesian_number_words,
)

__all__ = [
    "MAX_MENU_PATHS",
    "SOUND_EXTENSIONS",
    "FlowSet",
    "load_flow",
    "load_flows",
    "loops_without_exit",
    "menus_too_deep",
    "reachable",
]

# The formats Asterisk plays a sound:<name> from (format modules loaded in the sandbox).
SOUND_EXTENSIONS = ("wav", "gsm", "ulaw", "alaw", "sln", "g722", "sln16", "wav16")
MEDIA_SCHEMES = ("sound", "digits", "number", "characters", "tone", "recording")
# Menu paths the depth check follows before it gives up (a warning): far more than any flow a
# person can keep in mind has, and a fraction of a second.
MAX_MENU_PATHS = 100_000
EXIT_KINDS = frozenset({"hangup", "transfer"})
DTMF_KEYS = "0123456789*#ABCD"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ENGLISH = "en"

_FLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_NODE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_CALENDAR = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_ATTR = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_PREFIX = re.compile(r"[A-Za-z0-9_]{0,32}")
_DID = re.compile(r"[0-9]{2,20}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Za-z]{2})?")
_REASON = re.compile(r"[a-z][a-z0-9_]{0,62}")
_SOUND_NAME = re.compile(r"/?[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_DATE_LIKE = re.compile(r"[0-9]{4}-")

_T = TypeVar("_T")
# Typed empties, so that ``take``'s default does not narrow what its reader returns.
_NONE: tuple[str, ...] = ()
_NO_DAYS: frozenset[date] = frozenset()
# The shared calendar a flow calendar uses when it names none: Indonesia's national holidays.
DEFAULT_CALENDAR = "id-national"
_NO_CALENDARS: tuple[Calendar, ...] = ()
_NO_HEADERS: tuple[EnvHeader, ...] = ()
# An HTTP field name (RFC 9110 token), and an environment variable name as shells write them.
_HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# Set by the HTTP client from the request itself; a flow setting them would break the request.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_DEFAULT_LANGUAGES: tuple[str, ...] = ("id", "en")
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


# ---- the result -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FlowSet(Mapping[str, Flow]):
    """Flows by DID (a DID belongs to one flow), and what the engine should warn about once.

    ``flows`` are the distinct flows in the order of their files; ``warnings`` the warnings as
    text (``warning_details`` the same with file, node and key).
    """

    by_did: Mapping[str, Flow] = field(default_factory=lambda: MappingProxyType({}))
    flows: tuple[Flow, ...] = ()
    warnings: tuple[str, ...] = ()
    warning_details: tuple[FlowProblem, ...] = ()

    def __getitem__(self, did: str) -> Flow:
        return self.by_did[did]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_did)

    def __len__(self) -> int:
        return len(self.by_did)


def load_flow(
    path: Path,
    *,
    known_queues: Collection[str],
    sound_dirs: Mapping[str, Sequence[Path]] | None,
    max_menu_depth: int,
    calendars: Mapping[str, HolidayCalendar] | None = None,
    unknown_days_open: Collection[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Flow:
    """Load and check one flow file; raise FlowError with every problem found.

    ``sound_dirs`` maps a language to its sound folders (``ivr.sounds.language_dirs``); None
    skips the prompt check. ``environ`` is where lookup headers' variables are read (default:
    the process environment). Warnings are dropped here: ``load_flows`` returns them.
    """
    result = _FlowReader(
        path, known_queues, sound_dirs, max_menu_depth, calendars, unknown_days_open, environ
    ).read()
    if result.errors:
        raise FlowError(result.errors)
    assert result.flow is not None
    return result.flow


def load_flows(
    paths: Iterable[Path],
    *,
    known_queues: Collection[str],
    sound_dirs: Mapping[str, Sequence[Path]] | None,
    max_menu_depth: int,
    calendars: Mapping[str, HolidayCalendar] | None = None,
    unknown_days_open: Collection[str] = (),
    environ: Mapping[str, str] | None = None,
) -> FlowSet:
    """Load every flow file into one FlowSet; raise FlowError with the problems of all files.

    A DID claimed by two flows, or two files with the same flow name, is refused naming both
    files. ``environ`` as for ``load_flow``.
    """
    errors: list[FlowProblem] = []
    warnings: list[FlowProblem] = []
    flows: list[Flow] = []
    by_did: dict[str, Flow] = {}
    did_owner: dict[str, tuple[str, str]] = {}  # did -> (flow name, file)
    name_owner: dict[str, str] = {}  # flow name -> file
    seen_files: dict[Path, str] = {}
    for path in paths:
        file = str(path)
        real = path.resolve()
        if real in seen_files:
            errors.append(FlowProblem(file, "", "", f"listed twice (also as {seen_files[real]})"))
            continue
        seen_files[real] = file
        result = _FlowReader(
            path, known_queues, sound_dirs, max_menu_depth, calendars, unknown_days_open, environ
        ).read()
        errors.extend(result.errors)
        warnings.extend(result.warnings)
        if result.name is not None:
            if result.name in name_owner:
                errors.append(
                    FlowProblem(
                        file,
                        "",
                        "flow",
                        f"flow name {result.name!r} is already used by {name_owner[result.name]}",
                        result.name_line,
                    )
                )
            else:
                name_owner[result.name] = file
        for did, key, line in result.dids:
            if did in did_owner:
                other_name, other_file = did_owner[did]
                errors.append(
                    FlowProblem(
                        file,
                        "",
                        key,
                        f"DID {did} is already claimed by flow {other_name!r} in {other_file}",
                        line,
                    )
                )
            else:
                did_owner[did] = (result.name or "?", file)
        if result.flow is not None:
            flows.append(result.flow)
            for did in result.flow.dids:
                by_did.setdefault(did, result.flow)
    if errors:
        raise FlowError(errors)
    return FlowSet(
        by_did=MappingProxyType(by_did),
        flows=tuple(flows),
        warnings=tuple(str(w) for w in warnings),
        warning_details=tuple(warnings),
    )


# ---- graph analysis (pure) ------------------------------------------------------------------


def reachable(roots: Iterable[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    """Every node reachable from ``roots`` (the roots included)."""
    seen: set[str] = set()
    todo = deque(roots)
    while todo:
        n = todo.popleft()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(t for t in edges.get(n, ()) if t not in seen)
    return seen


def loops_without_exit(
    nodes: Sequence[str], edges: Mapping[str, Iterable[str]], exits: Collection[str]
) -> list[tuple[str, ...]]:
    """The loops (strongly connected sets with a cycle) of ``nodes`` from which no node of
    ``exits`` can be reached, each in ``nodes`` order, in the order of their first node.

    Every node of ``nodes`` that cannot reach an exit leads into one of them: each node has a
    successor unless it is an exit, so following successors ends in a cycle.
    """
    node_set = set(nodes)
    succ = {n: [t for t in edges.get(n, ()) if t in node_set] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for n, targets in succ.items():
        for t in targets:
            pred[t].append(n)
    can_exit = reachable((n for n in nodes if n in exits), pred)
    trapped = [n for n in nodes if n not in can_exit]
    trapped_set = set(trapped)
    trapped_succ = {n: [t for t in succ[n] if t in trapped_set] for n in trapped}
    # Flows are small (tens of nodes): mutual reachability is simple and obviously right.
    ahead = {n: reachable(trapped_succ[n], trapped_succ) for n in trapped}
    loops: list[tuple[str, ...]] = []
    placed: set[str] = set()
    for n in trapped:
        if n in placed or n not in ahead[n]:
            continue  # already in a loop found, or on no cycle (it leads into one)
        members = tuple(m for m in trapped if m in ahead[n] and n in ahead[m])
        placed.update(members)
        loops.append(members)
    return loops


def menus_too_deep(
    start: str,
    edges: Mapping[str, Iterable[str]],
    menus: Collection[str],
    max_depth: int,
    *,
    max_paths: int = MAX_MENU_PATHS,
) -> dict[str, tuple[str, ...]] | None:
    """Menus that some path from ``start`` reaches as its ``max_depth + 1``-th distinct menu,
    each with the first such path found (the menus along it).

    A path may pass other nodes any number of times but counts each menu once: the search is
    over simple paths in the graph of "menu -> the menus reachable through non-menu nodes".
    That is exponential in the worst case (menus all linked to each other); after
    ``max_paths`` paths the search gives up: it returns None, or the menus found too deep so
    far if there are any.
    """
    if len(menus) <= max_depth:
        return {}

    def menus_ahead(origin: str) -> list[str]:
        found: list[str] = []
        seen = {origin}
        todo = deque(edges.get(origin, ()))
        while todo:
            n = todo.popleft()
            if n in seen:
                continue
            seen.add(n)
            if n in menus:
                found.append(n)
            else:
                todo.extend(edges.get(n, ()))
        return found

    ahead: dict[str, list[str]] = {}
    too_deep: dict[str, tuple[str, ...]] = {}
    paths = 0

    def walk(path: tuple[str, ...]) -> bool:
        """False when the search gave up."""
        nonlocal paths
        paths += 1
        if paths > max_paths:
            return False
        last = path[-1]
        if len(path) > max_depth:
            too_deep.setdefault(last, path)
            return True
        if last not in ahead:
            ahead[last] = menus_ahead(last)
        return all(walk((*path, m)) for m in ahead[last] if m not in path)

    firsts = [start] if start in menus else menus_ahead(start)
    if not all(walk((m,)) for m in firsts) and not too_deep:
        return None  # (menus found too deep are problems even if there may be more)
    return too_deep


# ---- YAML with lines, duplicate keys refused, dates kept as text ---------------------------


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers the line of each key (1-based) and its own."""

    __slots__ = ("line", "lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: dict[Any, int] = {}


class _Seq(list[Any]):
    __slots__ = ("line", "lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: list[int] = []


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        # (mapping, key, line of the repeat, line of the first)
        self.duplicates: list[tuple[_Map, Any, int, int]] = []


# Dates stay text: PyYAML would turn 2026-13-01 into a ValueError with no line, and 2026-01-01
# into a date here but a string in a quoted holiday list.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    written = {id(k) for k, _ in node.value}
    # Merge keys (<<: *defaults) put the merged pairs first; a key written here overrides one
    # merged (that is what merging is for), and of two merged the first wins, as in YAML.
    loader.flatten_mapping(node)
    out = _Map(_line(node))
    merged: set[Any] = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        here = id(key_node) in written
        if key in out and (not here or key not in merged):
            if here:
                loader.duplicates.append((out, key, _line(key_node), out.lines[key]))
            continue
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = _line(key_node)
        if here:
            merged.discard(key)
        else:
            merged.add(key)
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    out = _Seq(_line(node))
    for child in node.value:
        out.append(loader.construct_object(child, deep=True))
        out.lines.append(_line(child))
    return out


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


# ---- locations ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _At:
    """Where a value is: node id ("" for the flow's own keys), key path, line."""

    node: str
    key: str
    line: int | None

    def child(self, part: str | int, line: int | None = None) -> _At:
        if isinstance(part, int):
            key = f"{self.key}[{part}]"
        else:
            key = f"{self.key}.{part}" if self.key else part
        return _At(self.node, key, line if line is not None else self.line)


def _at_path(path: Sequence[str | int], line: int | None) -> _At:
    """The location of a value at ``path`` from the top of a flow file."""
    if len(path) >= 2 and path[0] == "nodes":
        at = _At(str(path[1]), "", line)
        rest = path[2:]
    else:
        at = _At("", "", line)
        rest = path
    for part in rest:
        at = at.child(part, line)
    return at


def _paths(
    data: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[int, tuple[str | int, ...]]]:
    """(id of each mapping, its path) through a loaded document."""
    if isinstance(data, _Map):
        yield id(data), path
        for k, v in data.items():
            yield from _paths(v, (*path, str(k)))
    elif isinstance(data, _Seq):
        for i, v in enumerate(data):
            yield from _paths(v, (*path, i))


# ---- value readers --------------------------------------------------------------------------

# A reader checks one value and returns it converted, or records a problem and returns None.
_Read = Callable[["_FlowReader", Any, _At], _T | None]


def _show(v: Any) -> str:
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


def _close(word: str, choices: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    guess = _close(word, choices)
    return f" (did you mean {guess!r}?)" if guess else ""


def _string(
    what: str = "a string", pattern: re.Pattern[str] | None = None, *, allow_int: bool = False
) -> _Read[str]:
    def read(r: _FlowReader, v: Any, at: _At) -> str | None:
        if allow_int and isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            r.err(at, f"expected {what}, got {_show(v)}")
            return None
        if pattern is not None and not pattern.fullmatch(v):
            r.err(at, f"expected {what}, got {v!r}")
            return None
        return v

    return read


def _number(lo: float, hi: float, what: str = "seconds") -> _Read[float]:
    """A number in (lo, hi]."""

    def read(r: _FlowReader, v: Any, at: _At) -> float | None:
        if isinstance(v, bool) or not isinstance(v, int | float):
            r.err(at, f"expected a number of {what}, got {_show(v)}")
            return None
        if not lo < v <= hi:
            r.err(at, f"expected more than {lo:g} and at most {hi:g} {what}, got {v:g}")
            return None
        return float(v)

    return read


def _integer(lo: int, hi: int, what: str) -> _Read[int]:
    def read(r: _FlowReader, v: Any, at: _At) -> int | None:
        if isinstance(v, bool) or not isinstance(v, int):
            r.err(at, f"expected a whole number of {what}, got {_show(v)}")
            return None
        if not lo <= v <= hi:
            r.err(at, f"expected {lo} to {hi} {what}, got {v}")
            return None
        return v

    return read


def _boolean(r: _FlowReader, v: Any, at: _At) -> bool | None:
    if not isinstance(v, bool):
        r.err(at, f"expected true or false, got {_show(v)}")
        return None
    return v


def _dtmf(r: _FlowReader, v: Any, at: _At) -> str | None:
    """One DTMF key; YAML's unquoted 1 is the number 1, accepted as the key "1"."""
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 9:
        return str(v)
    if isinstance(v, str) and len(v) == 1 and v in DTMF_KEYS:
        return v
    if v is None:
        r.err(
            at, 'expected a single DTMF key, got nothing: quote "#" (unquoted, # starts a comment)'
        )
    else:
        r.err(at, f"expected a single DTMF key (0-9, *, #, A-D), got {_show(v)}")
    return None


def _key_or_none(r: _FlowReader, v: Any, at: _At) -> str | None:
    """A DTMF key, or false for none (returned as "")."""
    if v is False:
        return ""
    return _dtmf(r, v, at)


def _target(r: _FlowReader, v: Any, at: _At) -> str | None:
    """A node id: checked against the flow's nodes once all are read; an edge of the graph."""
    if not isinstance(v, str) or not v:
        r.err(at, f"expected a node id, got {_show(v)}")
        return None
    r.refs.append((at, v))
    if at.node:
        r.edges.setdefault(at.node, []).append(v)
    return v


def _prompts(nonempty: bool) -> _Read[tuple[str, ...]]:
    def read(r: _FlowReader, v: Any, at: _At) -> tuple[str, ...] | None:
        if isinstance(v, str):
            items: list[tuple[Any, _At]] = [(v, at)]
        elif isinstance(v, _Seq):
            items = [(x, at.child(i, v.lines[i])) for i, x in enumerate(v)]
        else:
            r.err(at, f"expected a list of prompt names, got {_show(v)}")
            return None
        if nonempty and not items:
            r.err(at, "expected at least one prompt")
            return None
        out: list[str] = []
        for x, x_at in items:
            media = r.prompt(x, x_at)
            if media is None:
                return None
            out.append(media)
        return tuple(out)

    return read


def _attribute(what: str = "an attribute name (letters, digits, _)") -> _Read[str]:
    return _string(what, _ATTR)


# ---- reading one file -----------------------------------------------------------------------


class _Obj:
    """A YAML mapping being read as one thing: unknown keys (typos) and missing ones reported
    when it is opened; ``take`` reads a key with a reader."""

    def __init__(
        self,
        r: _FlowReader,
        data: _Map,
        at: _At,
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
                r.err(k_at, f"unknown key {_show(k)}: {what} takes {', '.join(allowed)}")
                continue
            guess = _close(k, allowed)
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

    def at_(self, key: str) -> _At:
        return self.at.child(key, self.data.lines.get(key, self.data.line))

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def take(self, key: str, read: _Read[_T], default: _T | None = None) -> _T | None:
        if key not in self.data:
            return default
        return read(self.r, self.data[key], self.at_(key))


@dataclass
class _Result:
    flow: Flow | None
    name: str | None
    name_line: int | None
    dids: list[tuple[str, str, int | None]]  # (did, key, line)
    errors: list[FlowProblem]
    warnings: list[FlowProblem]


_NODE_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required keys, optional keys); "type" is everyone's
    "play": (("prompts", "next"), ("barge_in",)),
    "menu": (("prompts", "options"), ("timeout", "retry", "repeat_key", "zero_out")),
    "input": (
        ("prompts", "store_as", "next"),
        (
            "min_length",
            "max_length",
            "terminator",
            "first_digit_timeout",
            "inter_digit_timeout",
            "pattern",
            "retry",
            "sensitive",
        ),
    ),
    "condition": (("branches", "otherwise"), ()),
    "set": (("values", "next"), ()),
    "lookup": (("url", "next", "on_failure"), ("timeout", "retries", "store_prefix", "headers")),
    "say": (("kind", "value", "next"), ("before", "after")),
    "transfer": (("queue",), ("prompts",)),
    "hangup": ((), ("prompts", "reason")),
}
_SAY_KINDS: tuple[str, ...] = get_args(SayKind)


class _FlowReader:
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
        self.refs: list[tuple[_At, str]] = []  # target node references, checked at the end
        self.edges: dict[str, list[str]] = {}  # node -> targets (the flow graph)
        self.prompt_uses: list[tuple[str, _At]] = []  # sound names, where used
        self.kinds: dict[str, str] = {}  # node id -> kind ("" when unknown)
        self.node_lines: dict[str, int] = {}
        self.broken: set[str] = set()  # nodes that failed to read: no graph conclusions
        self.languages: tuple[str, ...] = ("id", "en")
        self.calendar_names: set[str] = set()
        self.hasher = hashlib.sha256()
        self.say_nodes: list[tuple[SayNode, _At]] = []
        self.zero_out: tuple[str | None, str | None] = (None, None)  # (key, target node)

    def err(self, at: _At, expected: str, file: str | None = None) -> None:
        self.errors.append(FlowProblem(file or self.file, at.node, at.key, expected, at.line))

    def warn(self, at: _At, expected: str) -> None:
        self.warnings.append(FlowProblem(self.file, at.node, at.key, expected, at.line))

    def result(self, flow: Flow | None = None, name: str | None = None) -> _Result:
        return _Result(flow, name, None, [], self.in_file_order(self.errors), self.warnings)

    def in_file_order(self, problems: list[FlowProblem]) -> list[FlowProblem]:
        """The flow file's problems by line, then those of included files: the order to fix
        them in (found in another order: graph checks come last)."""
        return sorted(problems, key=lambda p: (p.file != self.file, p.file, p.line or 0))

    # -- files ---------------------------------------------------------------------------------

    def parse_yaml(self, path: Path, file: str, at: _At | None) -> Any:
        """The document in ``path``; None (with a problem recorded) when it cannot be read.

        ``at`` is where the flow names an included file (None for the flow file itself).
        """
        try:
            raw = path.read_bytes()
        except OSError as err:
            if at is None:
                self.err(_At("", "", None), f"cannot read the file ({err.strerror})")
            else:
                self.err(at, f"cannot read the holiday file {file} ({err.strerror})")
            return None
        # The version: the flow file's bytes, then each included file's, in order.
        self.hasher.update(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            self.err(
                _At("", "", None), f"expected UTF-8 text ({err.reason} at byte {err.start})", file
            )
            return None
        loader = _Loader(text)
        try:
            data = loader.get_single_data()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = int(mark.line) + 1 if mark is not None else None
            what = " ".join(p for p in (err.context, err.problem) if p)
            if "alias" in what or "anchor" in what:
                what += " (quote * and # keys: '*', '#')"
            col = f", column {int(mark.column) + 1}" if mark is not None else ""
            self.err(_At("", "", line), f"invalid YAML: {what}{col}", file)
            return None
        except yaml.YAMLError as err:
            self.err(_At("", "", None), f"invalid YAML: {err}", file)
            return None
        finally:
            loader.dispose()
        where = {i: p for i, p in _paths(data)}
        for mapping, key, line, first in loader.duplicates:
            path_to = where.get(id(mapping), ())
            at_dup = _at_path((*path_to, str(key)), line)
            if path_to == ("nodes",):
                msg = f"defined twice (first at line {first}); YAML would keep only one"
            else:
                msg = f"given twice (first at line {first}); YAML would keep only one"
            self.err(at_dup, msg, file)
        return data

    # -- the flow ------------------------------------------------------------------------------

    def read(self) -> _Result:
        data = self.parse_yaml(self.path, self.file, None)
        if data is None:
            if not self.errors:
                self.err(
                    _At("", "", None),
                    "expected a flow (flow, dids, start, nodes), got an empty file",
                )
            return self.result()
        if not isinstance(data, _Map):
            self.err(
                _At("", "", 1),
                f"expected a flow mapping (flow, dids, start, nodes), got {_show(data)}",
            )
            return self.result()
        top = _Obj(
            self,
            data,
            _At("", "", data.line),
            "a flow",
            ("flow", "dids", "start", "nodes"),
            ("languages", "default_language", "zero_out", "calendars"),
        )
        name = top.take("flow", _string("a flow name (letters, digits, - _ .)", _FLOW_NAME))
        dids = self.read_dids(top)
        languages = top.take("languages", self.read_languages, _DEFAULT_LANGUAGES)
        if languages is not None:
            self.languages = languages
        default_language = top.take("default_language", _string("a language code", _LANGUAGE), "id")
        if (
            default_language is not None
            and languages is not None
            and default_language not in languages
        ):
            self.err(
                top.at_("default_language"),
                f"expected one of languages ({', '.join(languages)}), got {default_language!r}",
            )
            default_language = None
        calendars = top.take("calendars", self.read_calendars, _NO_CALENDARS)
        # Node ids and kinds first: targets and did-you-mean need them all.
        nodes_data = top.raw("nodes")
        if top.has("nodes") and not (isinstance(nodes_data, _Map) and nodes_data):
            self.err(
                top.at_("nodes"), f"expected a mapping of node id -> node, got {_show(nodes_data)}"
            )
            nodes_data = None
        if isinstance(nodes_data, _Map):
            self.survey_nodes(nodes_data)
        if top.has("zero_out"):
            zero = self.read_zero_out(top.raw("zero_out"), top.at_("zero_out"))
            if zero is not None:
                self.zero_out = zero
        start = top.take("start", _target)
        nodes: list[tuple[str, Node]] = []
        if isinstance(nodes_data, _Map):
            for nid, nd in nodes_data.items():
                if not isinstance(nid, str) or (nid in self.broken and nid not in self.kinds):
                    continue
                node = self.read_node(nid, nd, _At(nid, "", nodes_data.lines[nid]))
                if node is None:
                    self.broken.add(nid)
                else:
                    nodes.append((nid, node))
        if isinstance(nodes_data, _Map):
            self.check_refs()  # (without nodes, every reference would be unknown)
        if start is not None and isinstance(nodes_data, _Map):
            self.check_graph(start)
        if self.sound_dirs is not None:
            self.check_prompts(self.sound_dirs)
        flow = None
        if not self.errors:
            assert name is not None
            assert dids is not None
            assert start is not None
            assert languages is not None
            assert default_language is not None
            assert calendars is not None
            flow = Flow(
                name=name,
                dids=tuple(d for d, _, _ in dids),
                start=start,
                nodes=tuple(nodes),
                default_language=default_language,
                languages=languages,
                calendars=calendars,
                zero_out_key=self.zero_out[0],
                zero_out_target=self.zero_out[1],
                source=self.file,
                version=self.hasher.hexdigest(),
            )
        return _Result(
            flow,
            name,
            top.at_("flow").line,
            dids or [],
            self.in_file_order(self.errors),
            self.warnings,
        )

    def read_dids(self, top: _Obj) -> list[tuple[str, str, int | None]] | None:
        v = top.raw("dids")
        if not top.has("dids"):
            return None
        at = top.at_("dids")
        if not isinstance(v, _Seq) or not v:
            self.err(at, f'expected a list of DIDs (["1500"]), got {_show(v)}')
            return None
        out: list[tuple[str, str, int | None]] = []
        ok = True
        for i, d in enumerate(v):
            d_at = at.child(i, v.lines[i])
            if isinstance(d, int) and not isinstance(d, bool):
                self.err(
                    d_at,
                    f'expected the DID as a quoted string ("{d}"): YAML reads unquoted numbers '
                    "as numbers, and those starting with 0 as octal",
                )
                ok = False
            elif not isinstance(d, str) or not _DID.fullmatch(d):
                self.err(d_at, f"expected a DID of 2 to 20 digits, got {_show(d)}")
                ok = False
            elif any(d == o for o, _, _ in out):
                self.err(d_at, f"DID {d} is listed twice")
                ok = False
            else:
                out.append((d, d_at.key, d_at.line))
        return out if ok else None

    def read_languages(self, _r: _FlowReader, v: Any, at: _At) -> tuple[str, ...] | None:
        if not isinstance(v, _Seq) or not v:
            self.err(at, f"expected a list of language codes ([id, en]), got {_show(v)}")
            return None
        out: list[str] = []
        for i, lang in enumerate(v):
            l_at = at.child(i, v.lines[i])
            if not isinstance(lang, str) or not _LANGUAGE.fullmatch(lang):
                self.err(l_at, f"expected a language code such as id or en, got {_show(lang)}")
                return None
            if lang in out:
                self.err(l_at, f"language {lang!r} is listed twice")
                return None
            out.append(lang)
        return tuple(out)

    def read_zero_out(self, v: Any, at: _At) -> tuple[str | None, str | None] | None:
        if v is False:
            return None, None
        if not isinstance(v, _Map):
            self.err(at, f'expected {{key: "0", goto: <node>}} or false, got {_show(v)}')
            return None
        o = _Obj(self, v, at, "zero_out", ("key", "goto"))
        key = o.take("key", _dtmf)
        goto = o.take("goto", _target)
        if key is None or goto is None:
            return None
        return key, goto

    # -- calendars -----------------------------------------------------------------------------

    def read_calendars(self, _r: _FlowReader, v: Any, at: _At) -> tuple[Calendar, ...] | None:
        if not isinstance(v, _Map):
            self.err(at, f"expected a mapping of calendar name -> calendar, got {_show(v)}")
            return None
        out: list[Calendar] = []
        ok = True
        for name, cd in v.items():
            c_at = at.child(str(name), v.lines[name])
            if not isinstance(name, str) or not _CALENDAR.fullmatch(name):
                self.err(
                    c_at, f"expected a calendar name (letters, digits, - _), got {_show(name)}"
                )
                ok = False
                continue
            self.calendar_names.add(name)
            cal = self.read_calendar(name, cd, c_at)
            if cal is None:
                ok = False
            else:
                out.append(cal)
        return tuple(out) if ok else None

    def read_calendar(self, name: str, v: Any, at: _At) -> Calendar | None:
        if not isinstance(v, _Map):
            self.err(at, f"expected a calendar (timezone, hours, holidays), got {_show(v)}")
            return None
        o = _Obj(self, v, at, "a calendar", ("timezone", "hours"), ("holidays", "holiday_calendar"))
        tz = o.take("timezone", self.read_timezone)
        spans = o.take("hours", self.read_hours)
        holidays = o.take("holidays", self.read_holidays, _NO_DAYS)
        shared = o.take("holiday_calendar", self.read_shared_calendar, DEFAULT_CALENDAR)
        if tz is None or spans is None or holidays is None or shared is None:
            return None
        national = None if self.calendars is None else self.calendars.get(shared)
        if national is not None:
            # The flow's version changes when its shared calendar does (a reload shows it).
            self.hasher.update(repr(sorted(national.days)).encode())
            self.hasher.update(repr(sorted(national.covered or ())).encode())
        return Calendar(name, tz, spans, holidays, national, shared in self.unknown_days_open)

    def read_shared_calendar(self, _r: _FlowReader, v: Any, at: _At) -> str | None:
        if not isinstance(v, str) or not v:
            self.err(at, f"expected the name of a calendar from the settings, got {_show(v)}")
            return None
        if self.calendars is not None and v not in self.calendars:
            known = ", ".join(sorted(self.calendars))
            self.err(at, f"expected a calendar from the settings' [calendars] ({known}), got {v!r}")
            return None
        return v

    def read_timezone(self, _r: _FlowReader, v: Any, at: _At) -> str | None:
        if not isinstance(v, str) or not v:
            self.err(at, f"expected an IANA time zone such as Asia/Jakarta, got {_show(v)}")
            return None
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            hint = _did_you_mean(v, available_timezones())
            self.err(at, f"unknown time zone {v!r}{hint}")
            return None
        return v

    def read_hours(self, _r: _FlowReader, v: Any, at: _At) -> tuple[OpenSpan, ...] | None:
        if not isinstance(v, _Map):
            self.err(
                at, f'expected weekdays -> time ranges ({{mon-fri: "08:00-17:00"}}), got {_show(v)}'
            )
            return None
        out: list[OpenSpan] = []
        ok = True
        for days_spec, ranges in v.items():
            d_at = at.child(str(days_spec), v.lines[days_spec])
            days = self.read_weekdays(days_spec, d_at)
            if isinstance(ranges, str):
                items: list[tuple[Any, _At]] = [(ranges, d_at)]
            elif isinstance(ranges, _Seq) and ranges:
                items = [(x, d_at.child(i, ranges.lines[i])) for i, x in enumerate(ranges)]
            else:
                self.err(
                    d_at,
                    f'expected a time range "HH:MM-HH:MM" or a list of them, got {_show(ranges)}',
                )
                ok = False
                continue
            for text, r_at in items:
                span = self.read_time_range(text, r_at)
                if span is None or days is None:
                    ok = False
                else:
                    out.append(OpenSpan(days, span[0], span[1]))
        return tuple(out) if ok else None

    def read_weekdays(self, spec: Any, at: _At) -> frozenset[int] | None:
        if not isinstance(spec, str) or not spec.strip():
            self.err(at, f"expected weekdays such as mon-fri or sat,sun, got {_show(spec)}")
            return None
        days: set[int] = set()
        for part in spec.lower().split(","):
            ends = [p.strip() for p in part.split("-")]
            if len(ends) > 2:
                self.err(
                    at, f"expected a weekday or a range of two (mon-fri), got {part.strip()!r}"
                )
                return None
            idx: list[int] = []
            for day in ends:
                if day not in WEEKDAYS:
                    self.err(
                        at,
                        f"unknown weekday {day!r}{_did_you_mean(day, WEEKDAYS)}: "
                        f"use {', '.join(WEEKDAYS)}",
                    )
                    return None
                idx.append(WEEKDAYS.index(day))
            first, last = idx[0], idx[-1]
            # fri-mon wraps over the weekend: fri, sat, sun, mon
            span = (last - first) % 7
            days.update((first + i) % 7 for i in range(span + 1))
        return frozenset(days)

    def read_time_range(self, v: Any, at: _At) -> tuple[time, time] | None:
        if not isinstance(v, str):
            self.err(
                at, f'expected a time range as a quoted string ("08:00-17:00"), got {_show(v)}'
            )
            return None
        parts = v.replace(" ", "").split("-")
        times: list[time] = []
        for i, p in enumerate(parts if len(parts) == 2 else []):
            m = _TIME.fullmatch(p)
            h, mi = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
            if i == 1 and (h, mi) == (24, 0):
                times.append(time(0))  # midnight at the end of the day (ivr/menu.py's rule)
            elif 0 <= h <= 23 and 0 <= mi <= 59:
                times.append(time(h, mi))
        if len(times) != 2:
            self.err(
                at, f'expected a time range "HH:MM-HH:MM" (24-hour, end up to 24:00), got {v!r}'
            )
            return None
        start, end = times
        if end != time(0) and end <= start:
            self.err(
                at,
                f"expected the start before the end, got {v!r} (past midnight is two ranges: "
                '"22:00-24:00" and "00:00-06:00" on the next day)',
            )
            return None
        return start, end

    def read_holidays(self, _r: _FlowReader, v: Any, at: _At) -> frozenset[date] | None:
        if isinstance(v, str):
            items: list[tuple[Any, _At]] = [(v, at)]
        elif isinstance(v, _Seq):
            items = [(x, at.child(i, v.lines[i])) for i, x in enumerate(v)]
        else:
            self.err(at, f"expected a holiday file or a list of files and dates, got {_show(v)}")
            return None
        out: set[date] = set()
        ok = True
        for x, x_at in items:
            if not isinstance(x, str) or not x:
                self.err(x_at, f'expected a date "YYYY-MM-DD" or a holiday file, got {_show(x)}')
                ok = False
            elif _DATE_LIKE.match(x):
                d = self.read_date(x, x_at)
                if d is None:
                    ok = False
                else:
                    out.add(d)
            else:
                got = self.read_holiday_file(x, x_at)
                if got is None:
                    ok = False
                else:
                    out.update(got)
        return frozenset(out) if ok else None

    def read_date(self, v: Any, at: _At, file: str | None = None) -> date | None:
        try:
            if not isinstance(v, str):
                raise ValueError
            return date.fromisoformat(v)
        except ValueError:
            self.err(at, f'expected a date "YYYY-MM-DD", got {_show(v)}', file)
            return None

    def read_holiday_file(self, ref: str, at: _At) -> frozenset[date] | None:
        path = Path(ref)
        if not path.is_absolute():
            path = self.path.parent / path
        shown = os.path.normpath(path)  # messages only; the file is opened as written
        errors_before = len(self.errors)
        data = self.parse_yaml(path, shown, at)
        if data is None:
            if len(self.errors) == errors_before:
                self.err(
                    _At("", "", None),
                    "expected a holiday file (holidays: ...), got an empty file",
                    shown,
                )
            return None
        if not isinstance(data, _Map):
            self.err(
                _At("", "", 1), f"expected a holiday file (holidays: ...), got {_show(data)}", shown
            )
            return None
        # Problems inside the holiday file name that file; the flow file's own line is not
        # needed to find them.
        allowed = ("holidays", "name", "source")
        ok = True
        for k, line in data.lines.items():
            if k not in allowed:
                self.err(
                    _At("", str(k), line),
                    f"unknown key{_did_you_mean(str(k), allowed)}: "
                    "a holiday file takes holidays, name, source",
                    shown,
                )
                ok = False
        for k in ("name", "source"):
            if k in data and not isinstance(data[k], str):
                self.err(_At("", k, data.lines[k]), f"expected text, got {_show(data[k])}", shown)
                ok = False
        days = data.get("holidays")
        if not isinstance(days, _Map):
            line = data.lines.get("holidays", data.line)
            self.err(
                _At("", "holidays", line),
                f'expected a mapping "YYYY-MM-DD": name, got {_show(days)}',
                shown,
            )
            return None
        out: set[date] = set()
        for k, what in days.items():
            k_at = _At("", f"holidays.{k}", days.lines[k])
            d = self.read_date(k, k_at, shown)
            if d is None:
                ok = False
                continue
            if not isinstance(what, str) or not what:
                self.err(k_at, f"expected the holiday's name, got {_show(what)}", shown)
                ok = False
            out.add(d)
        return frozenset(out) if ok else None

    # -- nodes ---------------------------------------------------------------------------------

    def survey_nodes(self, nodes: _Map) -> None:
        for nid, nd in nodes.items():
            at = _At(str(nid), "", nodes.lines[nid])
            if not isinstance(nid, str) or not _NODE_ID.fullmatch(nid):
                self.err(
                    at,
                    "expected a node id (a letter or _, then letters, digits, - _), "
                    f"got {_show(nid)}",
                )
                self.broken.add(str(nid))
                continue
            self.node_lines[nid] = nodes.lines[nid]
            kind = nd.get("type") if isinstance(nd, _Map) else None
            self.kinds[nid] = kind if isinstance(kind, str) and kind in _NODE_KEYS else ""

    def read_node(self, nid: str, v: Any, at: _At) -> Node | None:
        kinds = ", ".join(_NODE_KEYS)
        if not isinstance(v, _Map):
            self.err(at, f"expected a node (a mapping with type: {kinds}), got {_show(v)}")
            return None
        kind = v.get("type")
        if "type" not in v:
            self.err(at.child("type", v.line), f"missing: every node needs a type ({kinds})")
            return None
        t_at = at.child("type", v.lines["type"])
        if not isinstance(kind, str) or kind not in _NODE_KEYS:
            hint = _did_you_mean(str(kind), _NODE_KEYS) if isinstance(kind, str) else ""
            self.err(t_at, f"unknown node kind {_show(kind)}{hint}: use one of {kinds}")
            return None
        required, optional = _NODE_KEYS[kind]
        o = _Obj(self, v, at, f"a {kind} node", ("type", *required), optional)
        read = getattr(self, f"node_{kind}")
        node: Node | None = read(nid, o)
        return node

    def node_play(self, nid: str, o: _Obj) -> PlayNode | None:
        prompts = o.take("prompts", _prompts(nonempty=True))
        nxt = o.take("next", _target)
        barge_in = o.take("barge_in", _boolean, True)
        if prompts is None or nxt is None or barge_in is None:
            return None
        return PlayNode(nid, prompts, nxt, barge_in)

    def node_menu(self, nid: str, o: _Obj) -> MenuNode | None:
        prompts = o.take("prompts", _prompts(nonempty=True))
        options = o.take("options", self.read_options)
        timeout = o.take("timeout", _number(0, 120), 5.0)
        retry = o.take("retry", self.read_retry, Retry())
        repeat = o.take("repeat_key", _key_or_none, "")
        zero_out = o.take("zero_out", _boolean, True)
        self.check_menu_keys(nid, o, repeat, zero_out)
        if (
            prompts is None
            or options is None
            or timeout is None
            or retry is None
            or repeat is None
            or zero_out is None
        ):
            return None
        return MenuNode(nid, prompts, options, timeout, retry, repeat or None, zero_out)

    def check_menu_keys(self, nid: str, o: _Obj, repeat: str | None, zero_out: bool | None) -> None:
        """Option keys the machine would take for something else (they could never be chosen);
        the zero-out key as an edge of the graph. Done even when other keys of the menu are
        wrong, so that all is said at once (an unreadable zero_out counts as its default)."""
        zero_key, zero_target = self.zero_out
        if zero_out is False or zero_key is None or zero_target is None:
            zero_key = None
        else:
            self.edges.setdefault(nid, []).append(zero_target)
        clash = (
            f"key {zero_key} is the flow's zero-out key (zero_out.key); pick another key or set "
            "zero_out: false on this menu"
        )
        options = o.raw("options")
        for k in options if isinstance(options, _Map) else ():
            key = str(k)
            k_at = o.at_("options").child(key, options.lines[k])
            if repeat and key == repeat:
                self.err(k_at, f"key {key} is this menu's repeat_key; pick another key")
            elif zero_key is not None and zero_out is not None and key == zero_key:
                self.err(k_at, clash)
        if zero_key is not None and zero_out is not None and repeat == zero_key:
            self.err(o.at_("repeat_key"), clash)

    def read_options(self, _r: _FlowReader, v: Any, at: _At) -> tuple[tuple[str, str], ...] | None:
        if not isinstance(v, _Map) or not v:
            self.err(at, f'expected a mapping of key -> node ({{"1": main}}), got {_show(v)}')
            return None
        out: list[tuple[str, str]] = []
        ok = True
        for k, target in v.items():
            k_at = at.child(str(k), v.lines[k])
            key = _dtmf(self, k, k_at)
            node = _target(self, target, k_at)
            if key is None or node is None:
                ok = False
            elif any(key == other for other, _ in out):
                self.err(k_at, f"key {key} is given twice")
                ok = False
            else:
                out.append((key, node))
        return tuple(out) if ok else None

    def read_retry(self, _r: _FlowReader, v: Any, at: _At) -> Retry | None:
        if not isinstance(v, _Map):
            self.err(at, f"expected {{attempts, no_input, invalid, on_failure}}, got {_show(v)}")
            return None
        o = _Obj(self, v, at, "retry", (), ("attempts", "no_input", "invalid", "on_failure"))
        attempts = o.take("attempts", _integer(1, 10, "attempts"), 3)
        no_input = o.take("no_input", _prompts(nonempty=False), _NONE)
        invalid = o.take("invalid", _prompts(nonempty=False), _NONE)
        on_failure = o.take("on_failure", _target, "")
        if attempts is None or no_input is None or invalid is None or on_failure is None:
            return None
        return Retry(attempts, no_input, invalid, on_failure)

    def node_input(self, nid: str, o: _Obj) -> InputNode | None:
        prompts = o.take("prompts", _prompts(nonempty=True))
        store_as = o.take("store_as", _attribute())
        nxt = o.take("next", _target)
        min_len = o.take("min_length", _integer(1, 64, "digits"), 1)
        max_len = o.take("max_length", _integer(1, 64, "digits"), 20)
        terminator = o.take("terminator", self.read_terminator, "#")
        first = o.take("first_digit_timeout", _number(0, 120), 5.0)
        inter = o.take("inter_digit_timeout", _number(0, 120), 3.0)
        pattern = o.take("pattern", self.read_pattern, "")
        retry = o.take("retry", self.read_retry, Retry())
        sensitive = o.take("sensitive", _boolean, False)
        if min_len is not None and max_len is not None and min_len > max_len:
            self.err(
                o.at_("max_length"), f"expected at least min_length ({min_len}), got {max_len}"
            )
            max_len = None
        if (
            prompts is None
            or store_as is None
            or nxt is None
            or min_len is None
            or max_len is None
            or terminator is None
            or first is None
            or inter is None
            or pattern is None
            or retry is None
            or sensitive is None
        ):
            return None
        return InputNode(
            nid,
            prompts,
            store_as,
            nxt,
            min_len,
            max_len,
            terminator or None,
            first,
            inter,
            pattern or None,
            retry,
            sensitive,
        )

    def read_terminator(self, _r: _FlowReader, v: Any, at: _At) -> str | None:
        if v is False:
            return ""
        if v in ("#", "*"):
            return str(v)
        if v is None:
            self.err(
                at,
                'expected "#", "*" or false, got nothing: quote "#" (unquoted, # starts a comment)',
            )
        else:
            self.err(at, f'expected "#", "*" or false (none), got {_show(v)}')
        return None

    def read_pattern(self, _r: _FlowReader, v: Any, at: _At) -> str | None:
        if not isinstance(v, str) or not v:
            self.err(at, f"expected a regular expression as a string, got {_show(v)}")
            return None
        try:
            re.compile(v)
        except re.error as err:
            where = f" at position {err.pos}" if err.pos is not None else ""
            self.err(at, f"invalid regular expression {v!r}: {err.msg}{where}")
            return None
        return v

    def node_condition(self, nid: str, o: _Obj) -> ConditionNode | None:
        branches = o.take("branches", self.read_branches)
        otherwise = o.take("otherwise", _target)
        if branches is None or otherwise is None:
            return None
        return ConditionNode(nid, branches, otherwise)

    def read_branches(self, _r: _FlowReader, v: Any, at: _At) -> tuple[Branch, ...] | None:
        if not isinstance(v, _Seq) or not v:
            self.err(at, f"expected a list of {{when: <condition>, goto: <node>}}, got {_show(v)}")
            return None
        out: list[Branch] = []
        ok = True
        for i, b in enumerate(v):
            b_at = at.child(i, v.lines[i])
            if not isinstance(b, _Map):
                self.err(b_at, f"expected {{when: <condition>, goto: <node>}}, got {_show(b)}")
                ok = False
                continue
            bo = _Obj(self, b, b_at, "a branch", ("when", "goto"))
            # (take() cannot infer a union through its type variable)
            when = self.read_condition(self, b["when"], bo.at_("when")) if "when" in b else None
            goto = bo.take("goto", _target)
            if when is None or goto is None:
                ok = False
            else:
                out.append(Branch(when, goto))
        return tuple(out) if ok else None

    def read_condition(self, _r: _FlowReader, v: Any, at: _At) -> Condition | None:
        forms = (
            "{business_hours: <calendar>}, {holiday: <calendar>}, {attr: x, equals: v}, "
            "{attr: x, in: [v, ...]}, {attr: x, present: true}"
        )
        if not isinstance(v, _Map):
            self.err(at, f"expected a condition: {forms}; got {_show(v)}")
            return None
        if "business_hours" in v:
            cal = _Obj(self, v, at, "a business_hours condition", ("business_hours",)).take(
                "business_hours", self.read_calendar_ref
            )
            return None if cal is None else InBusinessHours(cal)
        if "holiday" in v:
            cal = _Obj(self, v, at, "a holiday condition", ("holiday",)).take(
                "holiday", self.read_calendar_ref
            )
            return None if cal is None else IsHoliday(cal)
        if "attr" not in v:
            guess = _close(str(next(iter(v), "")), ("business_hours", "holiday", "attr"))
            hint = f" (did you mean {guess!r}?)" if guess else ""
            self.err(at, f"expected a condition: {forms}{hint}")
            return None
        tests = [k for k in ("equals", "in", "present") if k in v]
        if len(tests) != 1:
            _Obj(self, v, at, "an attribute condition", ("attr",), ("equals", "in", "present"))
            if not tests:
                self.err(at, "expected one of equals, in, present with attr")
            else:
                self.err(at, f"expected one of equals, in, present, got {', '.join(tests)}")
            return None
        o = _Obj(self, v, at, f"an attr/{tests[0]} condition", ("attr", tests[0]))
        attr = o.take("attr", _attribute())
        if tests[0] == "equals":
            value = o.take("equals", _string("a string or a whole number", allow_int=True))
            return None if attr is None or value is None else AttrEquals(attr, value)
        if tests[0] == "in":
            values = o.take("in", self.read_values_list)
            return None if attr is None or values is None else AttrIn(attr, values)
        present = o.take("present", _boolean)
        if present is False:
            self.err(
                o.at_("present"),
                "expected true (for an absent attribute, use the branch's otherwise)",
            )
            return None
        return None if attr is None or present is None else AttrPresent(attr)

    def read_values_list(self, _r: _FlowReader, v: Any, at: _At) -> frozenset[str] | None:
        if not isinstance(v, _Seq) or not v:
            self.err(at, f"expected a list of values, got {_show(v)}")
            return None
        read = _string("a string or a whole number", allow_int=True)
        values = [read(self, x, at.child(i, v.lines[i])) for i, x in enumerate(v)]
        if any(x is None for x in values):
            return None
        return frozenset(x for x in values if x is not None)

    def read_calendar_ref(self, _r: _FlowReader, v: Any, at: _At) -> str | None:
        if not isinstance(v, str) or not v:
            self.err(at, f"expected a calendar name, got {_show(v)}")
            return None
        if v not in self.calendar_names:
            if self.calendar_names:
                hint = _did_you_mean(v, self.calendar_names) or (
                    f" (calendars: {', '.join(sorted(self.calendar_names))})"
                )
            else:
                hint = " (the flow has no calendars)"
            self.err(at, f"unknown calendar {v!r}{hint}")
            return None
        return v

    def node_set(self, nid: str, o: _Obj) -> SetNode | None:
        values = o.take("values", self.read_set_values)
        nxt = o.take("next", _target)
        if values is None or nxt is None:
            return None
        return SetNode(nid, values, nxt)

    def read_set_values(
        self, _r: _FlowReader, v: Any, at: _At
    ) -> tuple[tuple[str, str], ...] | None:
        if not isinstance(v, _Map) or not v:
            self.err(at, f"expected a mapping of attribute -> value, got {_show(v)}")
            return None
        out: list[tuple[str, str]] = []
        ok = True
        read_value = _string("a string or a whole number", allow_int=True)
        for k, x in v.items():
            k_at = at.child(str(k), v.lines[k])
            attr = _attribute()(self, k, k_at)
            value = read_value(self, x, k_at)
            if attr is None or value is None:
                ok = False
            elif attr == "language" and value not in self.languages:
                self.err(
                    k_at,
                    f"expected one of the flow's languages ({', '.join(self.languages)}), "
                    f"got {value!r}",
                )
                ok = False
            else:
                out.append((attr, value))
        return tuple(out) if ok else None

    def node_lookup(self, nid: str, o: _Obj) -> LookupNode | None:
        url = o.take("url", self.read_url)
        nxt = o.take("next", _target)
        on_failure = o.take("on_failure", _target)
        timeout = o.take("timeout", _number(0, 30), 3.0)
        retries = o.take("retries", _integer(0, 3, "retries"), 1)
        prefix = o.take("store_prefix", _string("a prefix of letters, digits and _", _PREFIX), "")
        headers = o.take("headers", self.read_headers, _NO_HEADERS)
        if (
            url is None
            or nxt is None
            or on_failure is None
            or timeout is None
            or retries is None
            or prefix is None
            or headers is None
        ):
            return None
        return LookupNode(nid, url, nxt, on_failure, timeout, retries, prefix, headers)

    def read_headers(self, _r: _FlowReader, v: Any, at: _At) -> tuple[EnvHeader, ...] | None:
        """Header name -> ``{env: VARIABLE}``: the value is read from the environment now, so
        a missing variable stops the load (or the reload) naming file, node and key."""
        if not isinstance(v, _Map) or not v:
            self.err(at, f"expected a mapping of header -> {{env: VARIABLE}}, got {_show(v)}")
            return None
        out: list[EnvHeader] = []
        ok = True
        for name, spec in v.items():
            h_at = at.child(str(name), v.lines[name])
            if not isinstance(name, str) or not _HEADER.fullmatch(name):
                self.err(h_at, f"expected a header name (letters, digits, -), got {_show(name)}")
                ok = False
                continue
            if name.lower() in _RESERVED_HEADERS:
                self.err(h_at, f"header {name} is set by the HTTP client; leave it out")
                ok = False
                continue
            if any(name.lower() == o.name.lower() for o in out):
                self.err(h_at, f"header {name} is given twice")
                ok = False
                continue
            if not isinstance(spec, _Map):
                # Never echo the value: a literal here is most likely the secret itself.
                self.err(
                    h_at,
                    "expected {env: VARIABLE}: header values come from environment variables, "
                    "never from the flow file",
                )
                ok = False
                continue
            ho = _Obj(self, spec, h_at, "a header", ("env",))
            env = ho.take("env", _string("an environment variable name", _ENV_NAME))
            if env is None:
                ok = False
                continue
            value = self.environ.get(env)
            if value is None:
                self.err(ho.at_("env"), f"environment variable {env} is not set")
                ok = False
            elif not value or any(c in value for c in "\r\n\0"):
                self.err(
                    ho.at_("env"),
                    f"environment variable {env} is empty or holds a line break",
                )
                ok = False
            else:
                out.append(EnvHeader(name, env, value))
        return tuple(out) if ok else None

    def read_url(self, _r: _FlowReader, v: Any, at: _At) -> str | None:
        if not isinstance(v, str) or not re.match(r"https?://[^/\s{}]+", v):
            self.err(at, f"expected an http:// or https:// URL, got {_show(v)}")
            return None
        try:
            fields = list(string.Formatter().parse(v))
        except ValueError as err:
            self.err(at, f"expected a URL template with {{attribute}} fields: {err}")
            return None
        for _literal, name, spec, conversion in fields:
            if name is None:
                continue
            if not _ATTR.fullmatch(name) or spec or conversion:
                self.err(
                    at, f"expected {{attribute}} fields (an attribute name only), got {{{name}...}}"
                )
                return None
        return v

    def node_say(self, nid: str, o: _Obj) -> SayNode | None:
        kind: SayKind | None = o.take("kind", self.read_say_kind)
        value = o.take("value", _attribute())
        nxt = o.take("next", _target)
        before = o.take("before", _prompts(nonempty=False), _NONE)
        after = o.take("after", _prompts(nonempty=False), _NONE)
        if kind is None or value is None or nxt is None or before is None or after is None:
            return None
        node = SayNode(nid, value, kind, nxt, before, after)
        self.say_nodes.append((node, o.at_("kind")))
        return node

    def read_say_kind(self, _r: _FlowReader, v: Any, at: _At) -> SayKind | None:
        if isinstance(v, str) and v in _SAY_KINDS:
            return cast(SayKind, v)
        hint = _did_you_mean(v, _SAY_KINDS) if isinstance(v, str) else ""
        self.err(at, f"expected one of {', '.join(_SAY_KINDS)}, got {_show(v)}{hint}")
        return None

    def node_transfer(self, nid: str, o: _Obj) -> TransferNode | None:
        queue = o.take("queue", self.read_queue)
        prompts = o.take("prompts", _prompts(nonempty=False), _NONE)
        if queue is None or prompts is None:
            return None
        return TransferNode(nid, queue, prompts)

    def read_queue(self, _r: _FlowReader, v: Any, at: _At) -> str | None:
        if not isinstance(v, str) or not v:
            self.err(at, f"expected a queue name, got {_show(v)}")
            return None
        if v not in self.known_queues:
            if self.known_queues:
                hint = _did_you_mean(v, self.known_queues) or (
                    f" (known: {', '.join(sorted(self.known_queues))})"
                )
            else:
                hint = " (no queues are configured: [ivr] queues)"
            self.err(at, f"unknown queue {v!r}{hint}")
            return None
        return v

    def node_hangup(self, nid: str, o: _Obj) -> HangupNode | None:
        prompts = o.take("prompts", _prompts(nonempty=False), _NONE)
        reason = o.take(
            "reason", _string("a reason in snake_case (after_hours)", _REASON), "ivr_completed"
        )
        if prompts is None or reason is None:
            return None
        return HangupNode(nid, prompts, reason)

    # -- prompts -------------------------------------------------------------------------------

    def prompt(self, v: Any, at: _At) -> str | None:
        """A prompt as media: a bare name is sound:<name>; sound: names are kept for the check."""
        if not isinstance(v, str) or not v:
            self.err(at, f"expected a prompt name (sambung/main-menu), got {_show(v)}")
            return None
        scheme, sep, rest = v.partition(":")
        if not sep:
            scheme, rest = "sound", v
        elif scheme not in MEDIA_SCHEMES:
            hint = _did_you_mean(scheme, MEDIA_SCHEMES)
            self.err(at, f"unknown media scheme {scheme!r}{hint}: use {', '.join(MEDIA_SCHEMES)}")
            return None
        if scheme != "sound":
            if not rest or any(c.isspace() for c in rest):
                self.err(at, f"expected {scheme}:<value> without spaces, got {v!r}")
                return None
            return v
        if not _SOUND_NAME.fullmatch(rest) or ".." in rest.split("/"):
            self.err(at, f"expected a sound name such as sambung/main-menu, got {v!r}")
            return None
        if rest.endswith(tuple(f".{ext}" for ext in SOUND_EXTENSIONS)):
            self.err(at, f"expected the sound name without its extension, got {v!r}")
            return None
        if not rest.startswith("/"):
            self.prompt_uses.append((rest, at))
        return f"sound:{rest}"

    def check_prompts(self, sound_dirs: Mapping[str, Sequence[Path]]) -> None:
        found_cache: dict[tuple[str, str], bool] = {}

        def found(name: str, language: str) -> bool:
            if (name, language) not in found_cache:
                found_cache[(name, language)] = any(
                    (d / f"{name}.{ext}").is_file()
                    for d in sound_dirs.get(language, ())
                    for ext in SOUND_EXTENSIONS
                )
            return found_cache[(name, language)]

        def folders(language: str) -> str:
            dirs = sound_dirs.get(language, ())
            return ", ".join(str(d) for d in dirs) if dirs else f"no sounds folder for {language}"

        languages = [ENGLISH, *(lang for lang in self.languages if lang != ENGLISH)]
        uses: dict[str, list[_At]] = {}
        for name, at in self.prompt_uses:
            uses.setdefault(name, []).append(at)
        for node, at in self.say_nodes:
            if node.kind == "money":
                uses.setdefault(RUPIAH_PROMPT, []).append(at)
        for name, ats in uses.items():
            more = (
                f" (and {len(ats) - 1} more use{'s' if len(ats) > 2 else ''})"
                if len(ats) > 1
                else ""
            )
            if not found(name, ENGLISH):
                self.err(
                    ats[0],
                    f"prompt {name} not found in English, the fallback: no {name}.wav "
                    f"(or {', '.join(SOUND_EXTENSIONS[1:])}) in {folders(ENGLISH)}{more}",
                )
                continue
            for lang in languages[1:]:
                if not found(name, lang):
                    self.warn(
                        ats[0],
                        f"prompt {name} is missing in {lang} ({folders(lang)}): "
                        f"plays in English{more}",
                    )
        # Indonesian amounts are composed from our own word files; no English file stands in.
        speaks_indonesian = [lang for lang in self.languages if re.split(r"[_-]", lang)[0] == "id"]
        if self.say_nodes and speaks_indonesian:
            _, at = self.say_nodes[0]
            # Digits are said with the ten digit words; numbers and amounts need them all.
            words = INDONESIAN_NUMBER_WORDS
            if all(n.kind == "digits" for n, _ in self.say_nodes):
                words = tuple(indonesian_number_words(d)[0] for d in range(10))
            for lang in speaks_indonesian:
                missing = [w for w in words if not found(f"{NUMBER_PROMPT_DIR}/{w}", lang)]
                if missing:
                    self.err(
                        at,
                        f"say needs the Indonesian number words in {lang} ({folders(lang)}), "
                        f"which have no English fallback; missing {NUMBER_PROMPT_DIR}/"
                        + f", {NUMBER_PROMPT_DIR}/".join(missing[:5])
                        + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
                    )

    # -- cross-checks --------------------------------------------------------------------------

    def check_refs(self) -> None:
        ids = list(self.kinds)
        known = set(ids) | self.broken
        for at, target in self.refs:
            if target not in known:
                self.err(at, f"unknown target node {target!r}{_did_you_mean(target, ids)}")

    def check_graph(self, start: str) -> None:
        ids = list(self.kinds)
        known = set(ids)
        if start not in known:
            return  # reported as an unknown target; everything would look unreachable
        edges = {n: [t for t in ts if t in known] for n, ts in self.edges.items()}
        seen = reachable([start], edges)
        # A node that could not be read may have lost edges: what looks unreachable past it
        # may not be, so say nothing rather than something wrong.
        for nid in [] if seen & self.broken else ids:
            if nid not in seen:
                self.err(
                    _At(nid, "", self.node_lines.get(nid)),
                    f"unreachable: no path from start {start!r} leads here",
                )
        # Nodes not read (unknown kind...) and edges to unknown nodes might lead anywhere: they
        # count as exits so that one mistake is reported once, not again as a loop.
        exits = {n for n, k in self.kinds.items() if k in EXIT_KINDS} | self.broken
        exits |= {n for n, ts in self.edges.items() if any(t not in known for t in ts)}
        order = [n for n in ids if n in seen]
        for loop in loops_without_exit(order, edges, exits):
            first = loop[0]
            cycle = _cycle(first, edges, set(loop))
            names = ", ".join(loop)
            self.err(
                _At(first, "", self.node_lines.get(first)),
                f"loop with no exit: {' -> '.join(cycle)}; no hangup or transfer node can be "
                f"reached from {names}",
            )
        menus = {n for n, k in self.kinds.items() if k == "menu"}
        deep = menus_too_deep(start, edges, menus, self.max_menu_depth)
        if deep is None:
            self.warn(
                _At("", "start", None),
                f"menu depth not checked: more than {MAX_MENU_PATHS} paths through the menus",
            )
            deep = {}
        for menu, path in deep.items():
            self.err(
                _At(menu, "", self.node_lines.get(menu)),
                f"menus nested {len(path)} deep ({' -> '.join(path)}); "
                f"max_menu_depth is {self.max_menu_depth}",
            )


def _cycle(first: str, edges: Mapping[str, Sequence[str]], within: set[str]) -> list[str]:
    """A shortest cycle through ``first`` inside ``within``: [first, ..., first]."""
    parent: dict[str, str] = {}
    todo = deque([first])
    while todo:
        n = todo.popleft()
        for t in edges.get(n, ()):
            if t not in within:
                continue
            if t == first:
                path = [n]
                while path[-1] != first:
                    path.append(parent[path[-1]])
                return [*reversed(path), first]
            if t not in parent:
                parent[t] = n
                todo.append(t)
    return [first, first]  # unreachable for a loop: first lies on a cycle
