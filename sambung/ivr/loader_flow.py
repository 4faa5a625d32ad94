"""One flow file from top to bottom: ``read_flow`` reads the flow's own keys (``flow``,
``dids``, ``languages``, ``default_language``, ``zero_out``, ``calendars``, ``start``), then
every node, then makes the whole-flow checks, and returns a ``FlowResult``: the ``Flow`` when
nothing is wrong, and in any case what ``ivr.loader.load_flows`` needs to compare files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sambung.ivr.errors import FlowProblem
from sambung.ivr.loader_calendars import read_calendars
from sambung.ivr.loader_checks import check_graph, check_prompts, check_refs
from sambung.ivr.loader_nodes import read_node, survey_nodes
from sambung.ivr.loader_reader import DEFAULT_LANGUAGES, At, Obj, Reader, show
from sambung.ivr.loader_values import dtmf, string, target
from sambung.ivr.loader_yaml import YamlMap, YamlSeq
from sambung.ivr.model import Calendar, Flow, Node

__all__ = ["FLOW_KEYS", "ZERO_OUT_KEYS", "FlowResult", "read_flow"]

# (required keys, optional keys)
FLOW_KEYS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("flow", "dids", "start", "nodes"),
    ("languages", "default_language", "zero_out", "calendars"),
)
ZERO_OUT_KEYS = ("key", "goto")

_FLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DID = re.compile(r"[0-9]{2,20}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Za-z]{2})?")
# A typed empty, so that ``take``'s default does not narrow what its reader returns.
_NO_CALENDARS: tuple[Calendar, ...] = ()


@dataclass
class FlowResult:
    """What reading one file gave: the flow (None on any error), its name and DIDs as far as
    they could be read (to find clashes with other files even when this one is broken), and
    its problems in the order to fix them."""

    flow: Flow | None
    name: str | None
    name_line: int | None
    dids: list[tuple[str, str, int | None]]  # (did, key, line)
    errors: list[FlowProblem]
    warnings: list[FlowProblem]


def read_flow(r: Reader) -> FlowResult:
    data = r.parse_yaml(r.path, r.file, None)
    if data is None:
        if not r.errors:
            r.err(At("", "", None), "expected a flow (flow, dids, start, nodes), got an empty file")
        return _failed(r)
    if not isinstance(data, YamlMap):
        r.err(
            At("", "", 1),
            f"expected a flow mapping (flow, dids, start, nodes), got {show(data)}",
        )
        return _failed(r)
    top = Obj(r, data, At("", "", data.line), "a flow", *FLOW_KEYS)
    name = top.take("flow", string("a flow name (letters, digits, - _ .)", _FLOW_NAME))
    dids = _read_dids(r, top)
    languages = top.take("languages", _read_languages, DEFAULT_LANGUAGES)
    if languages is not None:
        r.languages = languages
    default_language = top.take("default_language", string("a language code", _LANGUAGE), "id")
    if default_language is not None and languages is not None and default_language not in languages:
        r.err(
            top.at_("default_language"),
            f"expected one of languages ({', '.join(languages)}), got {default_language!r}",
        )
        default_language = None
    calendars = top.take("calendars", read_calendars, _NO_CALENDARS)
    # Node ids and kinds first: targets and did-you-mean need them all.
    nodes_data = top.raw("nodes")
    if top.has("nodes") and not (isinstance(nodes_data, YamlMap) and nodes_data):
        r.err(top.at_("nodes"), f"expected a mapping of node id -> node, got {show(nodes_data)}")
        nodes_data = None
    if isinstance(nodes_data, YamlMap):
        survey_nodes(r, nodes_data)
    if top.has("zero_out"):
        zero = _read_zero_out(r, top.raw("zero_out"), top.at_("zero_out"))
        if zero is not None:
            r.zero_out = zero
    start = top.take("start", target)
    nodes: list[tuple[str, Node]] = []
    if isinstance(nodes_data, YamlMap):
        for nid, nd in nodes_data.items():
            if not isinstance(nid, str) or (nid in r.broken and nid not in r.kinds):
                continue
            node = read_node(r, nid, nd, At(nid, "", nodes_data.lines[nid]))
            if node is None:
                r.broken.add(nid)
            else:
                nodes.append((nid, node))
    if isinstance(nodes_data, YamlMap):
        check_refs(r)  # (without nodes, every reference would be unknown)
    if start is not None and isinstance(nodes_data, YamlMap):
        check_graph(r, start)
    if r.sound_dirs is not None:
        check_prompts(r, r.sound_dirs)
    flow = None
    if not r.errors:
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
            zero_out_key=r.zero_out[0],
            zero_out_target=r.zero_out[1],
            source=r.file,
            version=r.hasher.hexdigest(),
        )
    return FlowResult(
        flow, name, top.at_("flow").line, dids or [], r.in_file_order(r.errors), r.warnings
    )


def _failed(r: Reader) -> FlowResult:
    """The result of a file that is not a flow at all (unreadable, not a mapping)."""
    return FlowResult(None, None, None, [], r.in_file_order(r.errors), r.warnings)


def _read_dids(r: Reader, top: Obj) -> list[tuple[str, str, int | None]] | None:
    v = top.raw("dids")
    if not top.has("dids"):
        return None
    at = top.at_("dids")
    if not isinstance(v, YamlSeq) or not v:
        r.err(at, f'expected a list of DIDs (["1500"]), got {show(v)}')
        return None
    out: list[tuple[str, str, int | None]] = []
    ok = True
    for i, d in enumerate(v):
        d_at = at.child(i, v.lines[i])
        if isinstance(d, int) and not isinstance(d, bool):
            r.err(
                d_at,
                f'expected the DID as a quoted string ("{d}"): YAML reads unquoted numbers '
                "as numbers, and those starting with 0 as octal",
            )
            ok = False
        elif not isinstance(d, str) or not _DID.fullmatch(d):
            r.err(d_at, f"expected a DID of 2 to 20 digits, got {show(d)}")
            ok = False
        elif any(d == o for o, _, _ in out):
            r.err(d_at, f"DID {d} is listed twice")
            ok = False
        else:
            out.append((d, d_at.key, d_at.line))
    return out if ok else None


def _read_languages(r: Reader, v: Any, at: At) -> tuple[str, ...] | None:
    if not isinstance(v, YamlSeq) or not v:
        r.err(at, f"expected a list of language codes ([id, en]), got {show(v)}")
        return None
    out: list[str] = []
    for i, lang in enumerate(v):
        l_at = at.child(i, v.lines[i])
        if not isinstance(lang, str) or not _LANGUAGE.fullmatch(lang):
            r.err(l_at, f"expected a language code such as id or en, got {show(lang)}")
            return None
        if lang in out:
            r.err(l_at, f"language {lang!r} is listed twice")
            return None
        out.append(lang)
    return tuple(out)


def _read_zero_out(r: Reader, v: Any, at: At) -> tuple[str | None, str | None] | None:
    if v is False:
        return None, None
    if not isinstance(v, YamlMap):
        r.err(at, f'expected {{key: "0", goto: <node>}} or false, got {show(v)}')
        return None
    o = Obj(r, v, at, "zero_out", ZERO_OUT_KEYS)
    key = o.take("key", dtmf)
    goto = o.take("goto", target)
    if key is None or goto is None:
        return None
    return key, goto
