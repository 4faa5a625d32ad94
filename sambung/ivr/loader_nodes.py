"""The flow's nodes: the keys each node type takes and a reader per type (``NODE_KINDS``, at
the end of the module, is the list of node types).

``survey_nodes`` notes every node's id and type before any is read (references and
did-you-mean hints need them all); ``read_node`` then reads one node into its ``ivr.model``
dataclass. The readers of what only nodes hold live here too: menu options and retries, input
terminators and patterns, conditions, set values, lookup URLs and headers, say kinds, queues.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from string import Formatter
from typing import Any, cast, get_args

from sambung.ivr.loader_calendars import read_calendar_ref
from sambung.ivr.loader_reader import At, Obj, Reader, close, did_you_mean, show
from sambung.ivr.loader_values import (
    ATTR,
    attribute,
    boolean,
    dtmf,
    integer,
    key_or_none,
    number,
    prompts,
    string,
    target,
)
from sambung.ivr.loader_yaml import YamlMap, YamlSeq
from sambung.ivr.model import (
    AttrEquals,
    AttrIn,
    AttrPresent,
    Branch,
    Condition,
    ConditionNode,
    EnvHeader,
    HangupNode,
    InBusinessHours,
    InputNode,
    IsHoliday,
    LookupNode,
    MenuNode,
    Node,
    PlayNode,
    Retry,
    SayKind,
    SayNode,
    SetNode,
    TransferNode,
)

__all__ = ["NODE_KINDS", "RETRY_KEYS", "SAY_KINDS", "NodeKind", "read_node", "survey_nodes"]

SAY_KINDS: tuple[str, ...] = get_args(SayKind)
RETRY_KEYS = ("attempts", "no_input", "invalid", "on_failure")

_NODE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_PREFIX = re.compile(r"[A-Za-z0-9_]{0,32}")
_REASON = re.compile(r"[a-z][a-z0-9_]{0,62}")
# An HTTP field name (RFC 9110 token), and an environment variable name as shells write them.
_HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# Set by the HTTP client from the request itself; a flow setting them would break the request.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# Typed empties, so that ``take``'s default does not narrow what its reader returns.
_NONE: tuple[str, ...] = ()
_NO_HEADERS: tuple[EnvHeader, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeKind:
    """A node type: its keys (``type`` is everyone's and not listed) and its reader."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    read: Callable[[Reader, str, Obj], Node | None]


def survey_nodes(r: Reader, nodes: YamlMap) -> None:
    """Every node's id, line and type ("" when unknown), before any node is read."""
    for nid, nd in nodes.items():
        at = At(str(nid), "", nodes.lines[nid])
        if not isinstance(nid, str) or not _NODE_ID.fullmatch(nid):
            r.err(
                at,
                f"expected a node id (a letter or _, then letters, digits, - _), got {show(nid)}",
            )
            r.broken.add(str(nid))
            continue
        r.node_lines[nid] = nodes.lines[nid]
        kind = nd.get("type") if isinstance(nd, YamlMap) else None
        r.kinds[nid] = kind if isinstance(kind, str) and kind in NODE_KINDS else ""


def read_node(r: Reader, nid: str, v: Any, at: At) -> Node | None:
    kinds = ", ".join(NODE_KINDS)
    if not isinstance(v, YamlMap):
        r.err(at, f"expected a node (a mapping with type: {kinds}), got {show(v)}")
        return None
    kind = v.get("type")
    if "type" not in v:
        r.err(at.child("type", v.line), f"missing: every node needs a type ({kinds})")
        return None
    t_at = at.child("type", v.lines["type"])
    if not isinstance(kind, str) or kind not in NODE_KINDS:
        hint = did_you_mean(str(kind), NODE_KINDS) if isinstance(kind, str) else ""
        r.err(t_at, f"unknown node kind {show(kind)}{hint}: use one of {kinds}")
        return None
    spec = NODE_KINDS[kind]
    o = Obj(r, v, at, f"a {kind} node", ("type", *spec.required), spec.optional)
    return spec.read(r, nid, o)


# ---- play -----------------------------------------------------------------------------------


def _play(r: Reader, nid: str, o: Obj) -> PlayNode | None:
    media = o.take("prompts", prompts(nonempty=True))
    nxt = o.take("next", target)
    barge_in = o.take("barge_in", boolean, True)
    if media is None or nxt is None or barge_in is None:
        return None
    return PlayNode(nid, media, nxt, barge_in)


# ---- menu -----------------------------------------------------------------------------------


def _menu(r: Reader, nid: str, o: Obj) -> MenuNode | None:
    media = o.take("prompts", prompts(nonempty=True))
    options = o.take("options", _read_options)
    timeout = o.take("timeout", number(0, 120), 5.0)
    retry = o.take("retry", _read_retry, Retry())
    repeat = o.take("repeat_key", key_or_none, "")
    zero_out = o.take("zero_out", boolean, True)
    _check_menu_keys(r, nid, o, repeat, zero_out)
    if (
        media is None
        or options is None
        or timeout is None
        or retry is None
        or repeat is None
        or zero_out is None
    ):
        return None
    return MenuNode(nid, media, options, timeout, retry, repeat or None, zero_out)


def _check_menu_keys(
    r: Reader, nid: str, o: Obj, repeat: str | None, zero_out: bool | None
) -> None:
    """Option keys the machine would take for something else (they could never be chosen);
    the zero-out key as an edge of the graph. Done even when other keys of the menu are
    wrong, so that all is said at once (an unreadable zero_out counts as its default)."""
    zero_key, zero_target = r.zero_out
    if zero_out is False or zero_key is None or zero_target is None:
        zero_key = None
    else:
        r.edges.setdefault(nid, []).append(zero_target)
    clash = (
        f"key {zero_key} is the flow's zero-out key (zero_out.key); pick another key or set "
        "zero_out: false on this menu"
    )
    options = o.raw("options")
    for k in options if isinstance(options, YamlMap) else ():
        key = str(k)
        k_at = o.at_("options").child(key, options.lines[k])
        if repeat and key == repeat:
            r.err(k_at, f"key {key} is this menu's repeat_key; pick another key")
        elif zero_key is not None and zero_out is not None and key == zero_key:
            r.err(k_at, clash)
    if zero_key is not None and zero_out is not None and repeat == zero_key:
        r.err(o.at_("repeat_key"), clash)


def _read_options(r: Reader, v: Any, at: At) -> tuple[tuple[str, str], ...] | None:
    if not isinstance(v, YamlMap) or not v:
        r.err(at, f'expected a mapping of key -> node ({{"1": main}}), got {show(v)}')
        return None
    out: list[tuple[str, str]] = []
    ok = True
    for k, goto in v.items():
        k_at = at.child(str(k), v.lines[k])
        key = dtmf(r, k, k_at)
        node = target(r, goto, k_at)
        if key is None or node is None:
            ok = False
        elif any(key == other for other, _ in out):
            r.err(k_at, f"key {key} is given twice")
            ok = False
        else:
            out.append((key, node))
    return tuple(out) if ok else None


def _read_retry(r: Reader, v: Any, at: At) -> Retry | None:
    if not isinstance(v, YamlMap):
        r.err(at, f"expected {{attempts, no_input, invalid, on_failure}}, got {show(v)}")
        return None
    o = Obj(r, v, at, "retry", (), RETRY_KEYS)
    attempts = o.take("attempts", integer(1, 10, "attempts"), 3)
    no_input = o.take("no_input", prompts(nonempty=False), _NONE)
    invalid = o.take("invalid", prompts(nonempty=False), _NONE)
    on_failure = o.take("on_failure", target, "")
    if attempts is None or no_input is None or invalid is None or on_failure is None:
        return None
    return Retry(attempts, no_input, invalid, on_failure)


# ---- input ----------------------------------------------------------------------------------


def _input(r: Reader, nid: str, o: Obj) -> InputNode | None:
    media = o.take("prompts", prompts(nonempty=True))
    store_as = o.take("store_as", attribute())
    nxt = o.take("next", target)
    min_len = o.take("min_length", integer(1, 64, "digits"), 1)
    max_len = o.take("max_length", integer(1, 64, "digits"), 20)
    terminator = o.take("terminator", _read_terminator, "#")
    first = o.take("first_digit_timeout", number(0, 120), 5.0)
    inter = o.take("inter_digit_timeout", number(0, 120), 3.0)
    pattern = o.take("pattern", _read_pattern, "")
    retry = o.take("retry", _read_retry, Retry())
    sensitive = o.take("sensitive", boolean, False)
    if min_len is not None and max_len is not None and min_len > max_len:
        r.err(o.at_("max_length"), f"expected at least min_length ({min_len}), got {max_len}")
        max_len = None
    if (
        media is None
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
        media,
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


def _read_terminator(r: Reader, v: Any, at: At) -> str | None:
    if v is False:
        return ""
    if v in ("#", "*"):
        return str(v)
    if v is None:
        r.err(
            at,
            'expected "#", "*" or false, got nothing: quote "#" (unquoted, # starts a comment)',
        )
    else:
        r.err(at, f'expected "#", "*" or false (none), got {show(v)}')
    return None


def _read_pattern(r: Reader, v: Any, at: At) -> str | None:
    if not isinstance(v, str) or not v:
        r.err(at, f"expected a regular expression as a string, got {show(v)}")
        return None
    try:
        re.compile(v)
    except re.error as err:
        where = f" at position {err.pos}" if err.pos is not None else ""
        r.err(at, f"invalid regular expression {v!r}: {err.msg}{where}")
        return None
    return v


# ---- condition ------------------------------------------------------------------------------


def _condition(r: Reader, nid: str, o: Obj) -> ConditionNode | None:
    branches = o.take("branches", _read_branches)
    otherwise = o.take("otherwise", target)
    if branches is None or otherwise is None:
        return None
    return ConditionNode(nid, branches, otherwise)


def _read_branches(r: Reader, v: Any, at: At) -> tuple[Branch, ...] | None:
    if not isinstance(v, YamlSeq) or not v:
        r.err(at, f"expected a list of {{when: <condition>, goto: <node>}}, got {show(v)}")
        return None
    out: list[Branch] = []
    ok = True
    for i, b in enumerate(v):
        b_at = at.child(i, v.lines[i])
        if not isinstance(b, YamlMap):
            r.err(b_at, f"expected {{when: <condition>, goto: <node>}}, got {show(b)}")
            ok = False
            continue
        bo = Obj(r, b, b_at, "a branch", ("when", "goto"))
        # (take() cannot infer a union through its type variable)
        when = _read_when(r, b["when"], bo.at_("when")) if "when" in b else None
        goto = bo.take("goto", target)
        if when is None or goto is None:
            ok = False
        else:
            out.append(Branch(when, goto))
    return tuple(out) if ok else None


def _read_when(r: Reader, v: Any, at: At) -> Condition | None:
    forms = (
        "{business_hours: <calendar>}, {holiday: <calendar>}, {attr: x, equals: v}, "
        "{attr: x, in: [v, ...]}, {attr: x, present: true}"
    )
    if not isinstance(v, YamlMap):
        r.err(at, f"expected a condition: {forms}; got {show(v)}")
        return None
    if "business_hours" in v:
        cal = Obj(r, v, at, "a business_hours condition", ("business_hours",)).take(
            "business_hours", read_calendar_ref
        )
        return None if cal is None else InBusinessHours(cal)
    if "holiday" in v:
        cal = Obj(r, v, at, "a holiday condition", ("holiday",)).take("holiday", read_calendar_ref)
        return None if cal is None else IsHoliday(cal)
    if "attr" not in v:
        guess = close(str(next(iter(v), "")), ("business_hours", "holiday", "attr"))
        hint = f" (did you mean {guess!r}?)" if guess else ""
        r.err(at, f"expected a condition: {forms}{hint}")
        return None
    tests = [k for k in ("equals", "in", "present") if k in v]
    if len(tests) != 1:
        Obj(r, v, at, "an attribute condition", ("attr",), ("equals", "in", "present"))
        if not tests:
            r.err(at, "expected one of equals, in, present with attr")
        else:
            r.err(at, f"expected one of equals, in, present, got {', '.join(tests)}")
        return None
    o = Obj(r, v, at, f"an attr/{tests[0]} condition", ("attr", tests[0]))
    attr = o.take("attr", attribute())
    if tests[0] == "equals":
        value = o.take("equals", string("a string or a whole number", allow_int=True))
        return None if attr is None or value is None else AttrEquals(attr, value)
    if tests[0] == "in":
        values = o.take("in", _read_values_list)
        return None if attr is None or values is None else AttrIn(attr, values)
    present = o.take("present", boolean)
    if present is False:
        r.err(
            o.at_("present"),
            "expected true (for an absent attribute, use the branch's otherwise)",
        )
        return None
    return None if attr is None or present is None else AttrPresent(attr)


def _read_values_list(r: Reader, v: Any, at: At) -> frozenset[str] | None:
    if not isinstance(v, YamlSeq) or not v:
        r.err(at, f"expected a list of values, got {show(v)}")
        return None
    read = string("a string or a whole number", allow_int=True)
    values = [read(r, x, at.child(i, v.lines[i])) for i, x in enumerate(v)]
    if any(x is None for x in values):
        return None
    return frozenset(x for x in values if x is not None)


# ---- set ------------------------------------------------------------------------------------


def _set(r: Reader, nid: str, o: Obj) -> SetNode | None:
    values = o.take("values", _read_set_values)
    nxt = o.take("next", target)
    if values is None or nxt is None:
        return None
    return SetNode(nid, values, nxt)


def _read_set_values(r: Reader, v: Any, at: At) -> tuple[tuple[str, str], ...] | None:
    if not isinstance(v, YamlMap) or not v:
        r.err(at, f"expected a mapping of attribute -> value, got {show(v)}")
        return None
    out: list[tuple[str, str]] = []
    ok = True
    read_value = string("a string or a whole number", allow_int=True)
    for k, x in v.items():
        k_at = at.child(str(k), v.lines[k])
        attr = attribute()(r, k, k_at)
        value = read_value(r, x, k_at)
        if attr is None or value is None:
            ok = False
        elif attr == "language" and value not in r.languages:
            r.err(
                k_at,
                f"expected one of the flow's languages ({', '.join(r.languages)}), got {value!r}",
            )
            ok = False
        else:
            out.append((attr, value))
    return tuple(out) if ok else None


# ---- lookup ---------------------------------------------------------------------------------


def _lookup(r: Reader, nid: str, o: Obj) -> LookupNode | None:
    url = o.take("url", _read_url)
    nxt = o.take("next", target)
    on_failure = o.take("on_failure", target)
    timeout = o.take("timeout", number(0, 30), 3.0)
    retries = o.take("retries", integer(0, 3, "retries"), 1)
    prefix = o.take("store_prefix", string("a prefix of letters, digits and _", _PREFIX), "")
    headers = o.take("headers", _read_headers, _NO_HEADERS)
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


def _read_headers(r: Reader, v: Any, at: At) -> tuple[EnvHeader, ...] | None:
    """Header name -> ``{env: VARIABLE}``: the value is read from the environment now, so
    a missing variable stops the load (or the reload) naming file, node and key."""
    if not isinstance(v, YamlMap) or not v:
        r.err(at, f"expected a mapping of header -> {{env: VARIABLE}}, got {show(v)}")
        return None
    out: list[EnvHeader] = []
    ok = True
    for name, spec in v.items():
        h_at = at.child(str(name), v.lines[name])
        if not isinstance(name, str) or not _HEADER.fullmatch(name):
            r.err(h_at, f"expected a header name (letters, digits, -), got {show(name)}")
            ok = False
            continue
        if name.lower() in _RESERVED_HEADERS:
            r.err(h_at, f"header {name} is set by the HTTP client; leave it out")
            ok = False
            continue
        if any(name.lower() == o.name.lower() for o in out):
            r.err(h_at, f"header {name} is given twice")
            ok = False
            continue
        if not isinstance(spec, YamlMap):
            # Never echo the value: a literal here is most likely the secret itself.
            r.err(
                h_at,
                "expected {env: VARIABLE}: header values come from environment variables, "
                "never from the flow file",
            )
            ok = False
            continue
        ho = Obj(r, spec, h_at, "a header", ("env",))
        env = ho.take("env", string("an environment variable name", _ENV_NAME))
        if env is None:
            ok = False
            continue
        value = r.environ.get(env)
        if value is None:
            r.err(ho.at_("env"), f"environment variable {env} is not set")
            ok = False
        elif not value or any(c in value for c in "\r\n\0"):
            r.err(ho.at_("env"), f"environment variable {env} is empty or holds a line break")
            ok = False
        else:
            out.append(EnvHeader(name, env, value))
    return tuple(out) if ok else None


def _read_url(r: Reader, v: Any, at: At) -> str | None:
    if not isinstance(v, str) or not re.match(r"https?://[^/\s{}]+", v):
        r.err(at, f"expected an http:// or https:// URL, got {show(v)}")
        return None
    try:
        fields = list(Formatter().parse(v))
    except ValueError as err:
        r.err(at, f"expected a URL template with {{attribute}} fields: {err}")
        return None
    for _literal, name, spec, conversion in fields:
        if name is None:
            continue
        if not ATTR.fullmatch(name) or spec or conversion:
            r.err(at, f"expected {{attribute}} fields (an attribute name only), got {{{name}...}}")
            return None
    return v


# ---- say ------------------------------------------------------------------------------------


def _say(r: Reader, nid: str, o: Obj) -> SayNode | None:
    kind: SayKind | None = o.take("kind", _read_say_kind)
    value = o.take("value", attribute())
    nxt = o.take("next", target)
    before = o.take("before", prompts(nonempty=False), _NONE)
    after = o.take("after", prompts(nonempty=False), _NONE)
    if kind is None or value is None or nxt is None or before is None or after is None:
        return None
    node = SayNode(nid, value, kind, nxt, before, after)
    r.say_nodes.append((node, o.at_("kind")))
    return node


def _read_say_kind(r: Reader, v: Any, at: At) -> SayKind | None:
    if isinstance(v, str) and v in SAY_KINDS:
        return cast(SayKind, v)
    hint = did_you_mean(v, SAY_KINDS) if isinstance(v, str) else ""
    r.err(at, f"expected one of {', '.join(SAY_KINDS)}, got {show(v)}{hint}")
    return None


# ---- transfer and hangup --------------------------------------------------------------------


def _transfer(r: Reader, nid: str, o: Obj) -> TransferNode | None:
    queue = o.take("queue", _read_queue)
    media = o.take("prompts", prompts(nonempty=False), _NONE)
    if queue is None or media is None:
        return None
    return TransferNode(nid, queue, media)


def _read_queue(r: Reader, v: Any, at: At) -> str | None:
    if not isinstance(v, str) or not v:
        r.err(at, f"expected a queue name, got {show(v)}")
        return None
    if v not in r.known_queues:
        if r.known_queues:
            hint = did_you_mean(v, r.known_queues) or (
                f" (known: {', '.join(sorted(r.known_queues))})"
            )
        else:
            hint = " (no queues are configured: [ivr] queues)"
        r.err(at, f"unknown queue {v!r}{hint}")
        return None
    return v


def _hangup(r: Reader, nid: str, o: Obj) -> HangupNode | None:
    media = o.take("prompts", prompts(nonempty=False), _NONE)
    reason = o.take(
        "reason", string("a reason in snake_case (after_hours)", _REASON), "ivr_completed"
    )
    if media is None or reason is None:
        return None
    return HangupNode(nid, media, reason)


# Every node type: what a flow may write after ``type:``, in the order messages list them.
NODE_KINDS: Mapping[str, NodeKind] = {
    "play": NodeKind(("prompts", "next"), ("barge_in",), _play),
    "menu": NodeKind(("prompts", "options"), ("timeout", "retry", "repeat_key", "zero_out"), _menu),
    "input": NodeKind(
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
        _input,
    ),
    "condition": NodeKind(("branches", "otherwise"), (), _condition),
    "set": NodeKind(("values", "next"), (), _set),
    "lookup": NodeKind(
        ("url", "next", "on_failure"), ("timeout", "retries", "store_prefix", "headers"), _lookup
    ),
    "say": NodeKind(("kind", "value", "next"), ("before", "after"), _say),
    "transfer": NodeKind(("queue",), ("prompts",), _transfer),
    "hangup": NodeKind((), ("prompts", "reason"), _hangup),
}
