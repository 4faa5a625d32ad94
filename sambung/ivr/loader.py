"""Flow files (YAML) into ``ivr.model.Flow``, validated; every problem names file, node and key.

    flow = load_flow(path, known_queues={"collections"}, sound_dirs=dirs, max_menu_depth=4)
    table = load_flows(paths, known_queues=..., sound_dirs=..., max_menu_depth=4)
    table.by_did["1500"]   # a FlowTable (ivr/flows.py); table.warnings for the engine to log

A file with problems raises :class:`ivr.errors.FlowError` holding *all* of them (each
``file:line: node 'x': key: what is wrong``); nothing of it is loaded. The format, every check
and its message are documented in ``docs/ivr-flows.md``; ``docs/ivr-flow.schema.json`` is the
same format as a JSON Schema for editors.

Where each part of reading a file is:

``ivr/loader_yaml.py``
    YAML with the line of every key and item; duplicate keys found, dates kept as text.
``ivr/loader_reader.py``
    ``Reader``, the state of reading one file (problems, references, graph edges), ``At``
    (where a value is) and ``Obj`` (one mapping read key by key).
``ivr/loader_values.py``
    Plain values: text, numbers, DTMF keys, node references, attribute names, prompts.
``ivr/loader_calendars.py``
    Calendars: business hours, weekdays, time zones, holiday dates and files.
``ivr/loader_nodes.py``
    ``NODE_KINDS`` (every node type and its keys) and a reader per node type.
``ivr/loader_flow.py``
    One file from top to bottom: the flow's own keys, the nodes, then the checks.
``ivr/loader_checks.py`` and ``ivr/loader_graph.py``
    The whole-flow checks (unknown targets, unreachable nodes, loops with no exit, menu
    depth, prompts in the sound folders) and the pure graph analysis under them.

``Flow.version`` is the sha256 of the file and of the holiday files it includes, in order (and
of its shared holiday calendar's days); ``Flow.source`` the path as given.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from sambung.engine.calendars import HolidayCalendar
from sambung.ivr.errors import FlowError, FlowProblem
from sambung.ivr.flows import FlowTable
from sambung.ivr.loader_flow import read_flow
from sambung.ivr.loader_reader import Reader
from sambung.ivr.model import Flow

__all__ = ["FlowError", "load_flow", "load_flows"]


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
    result = read_flow(
        Reader(
            path, known_queues, sound_dirs, max_menu_depth, calendars, unknown_days_open, environ
        )
    )
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
) -> FlowTable:
    """Load every flow file into one FlowTable; raise FlowError with the problems of all files.

    A DID claimed by two flows, two files with the same flow name, or one file listed twice
    is refused naming both. ``environ`` as for ``load_flow``.
    """
    errors: list[FlowProblem] = []
    warnings: list[FlowProblem] = []
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
        result = read_flow(
            Reader(
                path,
                known_queues,
                sound_dirs,
                max_menu_depth,
                calendars,
                unknown_days_open,
                environ,
            )
        )
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
            for did in result.flow.dids:
                by_did.setdefault(did, result.flow)
    if errors:
        raise FlowError(errors)
    return FlowTable(MappingProxyType(by_did), tuple(warnings))
