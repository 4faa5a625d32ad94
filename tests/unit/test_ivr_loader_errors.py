"""Tables of invalid flow files: each problem is named by file, node and key, with the text.

``BASE`` is a valid flow using every node kind; each case changes one thing in it (``DELETE``
removes a key), writes it as YAML and checks the one problem the loader reports. Raw-text
cases cover what a dict cannot express: YAML syntax, duplicate keys, unquoted ``#`` and ``*``,
holiday files.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from sambung.ivr.errors import FlowError, FlowProblem
from sambung.ivr.loader import load_flow

QUEUES = {"collections"}
DELETE = object()

BASE: dict[str, Any] = {
    "flow": "t",
    "dids": ["1500"],
    "languages": ["id", "en"],
    "default_language": "id",
    "start": "menu",
    "zero_out": {"key": "0", "goto": "agent"},
    "calendars": {
        "office": {
            "timezone": "Asia/Jakarta",
            "hours": {"mon-fri": "08:00-17:00", "sat": ["08:00-12:00"]},
            "holidays": ["2026-01-01"],
        }
    },
    "nodes": {
        "menu": {
            "type": "menu",
            "prompts": ["p/menu"],
            "options": {"1": "hours", "2": "account", "3": "info"},
            "timeout": 5,
            "repeat_key": "9",
            "retry": {
                "attempts": 2,
                "no_input": ["p/no"],
                "invalid": ["p/bad"],
                "on_failure": "bye",
            },
        },
        "hours": {
            "type": "condition",
            "branches": [
                {"when": {"business_hours": "office"}, "goto": "agent"},
                {"when": {"holiday": "office"}, "goto": "bye"},
                {"when": {"attr": "segment", "equals": "vip"}, "goto": "agent"},
                {"when": {"attr": "segment", "in": ["a", "b"]}, "goto": "agent"},
                {"when": {"attr": "crm_name", "present": True}, "goto": "agent"},
            ],
            "otherwise": "bye",
        },
        "account": {
            "type": "input",
            "prompts": ["p/acct"],
            "store_as": "account",
            "min_length": 6,
            "max_length": 10,
            "terminator": "#",
            "first_digit_timeout": 6,
            "inter_digit_timeout": 3,
            "pattern": "[0-9]+",
            "next": "lookup",
        },
        "lookup": {
            "type": "lookup",
            "url": "http://crm/accounts/{account}",
            "timeout": 2,
            "retries": 1,
            "store_prefix": "crm_",
            "next": "say",
            "on_failure": "bye",
        },
        "say": {"type": "say", "kind": "money", "value": "crm_amount", "next": "set"},
        "set": {"type": "set", "values": {"language": "en", "priority": 3}, "next": "menu"},
        "info": {"type": "play", "prompts": ["p/info"], "next": "menu", "barge_in": True},
        "agent": {"type": "transfer", "queue": "collections", "prompts": ["p/hold"]},
        "bye": {"type": "hangup", "prompts": ["p/bye"], "reason": "done"},
    },
}


def flow_file(tmp: Path, data: Any, name: str = "flow.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def problems_of(path: Path, max_menu_depth: int = 4) -> list[FlowProblem]:
    with pytest.raises(FlowError) as err:
        load_flow(path, known_queues=QUEUES, sound_dirs=None, max_menu_depth=max_menu_depth)
    assert err.value.error_id == "ivr.flow_invalid"
    return list(err.value.problems)


def changed(path: tuple[str, ...], value: object) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    target = data
    for part in path[:-1]:
        target = target[part]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


def test_given_the_base_flow_then_it_is_valid(tmp_path: Path) -> None:
    flow = load_flow(
        flow_file(tmp_path, BASE), known_queues=QUEUES, sound_dirs=None, max_menu_depth=4
    )
    assert len(flow.nodes) == len(BASE["nodes"])


class Case(NamedTuple):
    path: tuple[str, ...]  # what to change in BASE
    value: object
    node: str
    key: str
    expected: str
    others: int = 0  # further problems the change causes (an unreachable node...)


N = "nodes"
CASES: dict[str, Case] = {
    # -- node kinds, keys, types ---------------------------------------------------------
    "unknown node kind": Case(
        (N, "info", "type"),
        "plya",
        "info",
        "type",
        "unknown node kind 'plya' (did you mean 'play'?): use one of play, menu, input, "
        "condition, set, lookup, say, transfer, hangup",
    ),
    "node without a type": Case(
        (N, "info", "type"),
        DELETE,
        "info",
        "type",
        "missing: every node needs a type (play, menu, input, condition, set, lookup, say, "
        "transfer, hangup)",
    ),
    "node not a mapping": Case(
        (N, "info"),
        "play",
        "info",
        "",
        "expected a node (a mapping with type: play, menu, input, condition, set, lookup, say, "
        "transfer, hangup), got 'play'",
    ),
    "missing key": Case(
        (N, "info", "next"), DELETE, "info", "next", "missing (required in a play node)"
    ),
    "key of another kind": Case(
        (N, "agent", "next"),
        "bye",
        "agent",
        "next",
        "unknown key 'next': a transfer node takes type, queue, prompts",
    ),
    "top-level typo": Case(
        ("calendar",),
        {},
        "",
        "calendar",
        "unknown key 'calendar' (did you mean 'calendars'?)",
    ),
    "retry typo": Case(
        (N, "menu", "retry", "attempt"),
        3,
        "menu",
        "retry.attempt",
        "unknown key 'attempt' (did you mean 'attempts'?)",
    ),
    "number as text": Case(
        (N, "menu", "timeout"),
        "five",
        "menu",
        "timeout",
        "expected a number of seconds, got 'five'",
    ),
    "zero timeout": Case(
        (N, "menu", "timeout"),
        0,
        "menu",
        "timeout",
        "expected more than 0 and at most 120 seconds, got 0",
    ),
    "bool as number": Case(
        (N, "menu", "retry", "attempts"),
        True,
        "menu",
        "retry.attempts",
        "expected a whole number of attempts, got true",
    ),
    "attempts out of range": Case(
        (N, "menu", "retry", "attempts"),
        0,
        "menu",
        "retry.attempts",
        "expected 1 to 10 attempts, got 0",
    ),
    "retries out of range": Case(
        (N, "lookup", "retries"), 5, "lookup", "retries", "expected 0 to 3 retries, got 5"
    ),
    "not a bool": Case(
        (N, "info", "barge_in"),
        "yes please",
        "info",
        "barge_in",
        "expected true or false, got 'yes please'",
    ),
    "prompts not a list": Case(
        (N, "info", "prompts"),
        {"a": 1},
        "info",
        "prompts",
        "expected a list of prompt names, got a mapping",
    ),
    "no prompts": Case(
        (N, "info", "prompts"), [], "info", "prompts", "expected at least one prompt"
    ),
    "unknown media scheme": Case(
        (N, "info", "prompts"),
        ["p/a", "soud:p/b"],
        "info",
        "prompts[1]",
        "unknown media scheme 'soud' (did you mean 'sound'?): use sound, digits, number, "
        "characters, tone, recording",
    ),
    "prompt with extension": Case(
        (N, "info", "prompts"),
        ["p/info.wav"],
        "info",
        "prompts[0]",
        "expected the sound name without its extension, got 'p/info.wav'",
    ),
    "prompt climbing out": Case(
        (N, "info", "prompts"),
        ["../../etc/passwd"],
        "info",
        "prompts[0]",
        "expected a sound name such as sambung/main-menu, got '../../etc/passwd'",
    ),
    "bad node id": Case(
        (N, "9lives"),
        {"type": "hangup"},
        "9lives",
        "",
        "expected a node id (a letter or _, then letters, digits, - _), got '9lives'",
    ),
    "empty nodes": Case(
        (N,), {}, "", "nodes", "expected a mapping of node id -> node, got an empty mapping"
    ),
    # -- targets, queues, calendars ------------------------------------------------------
    "unknown target": Case(
        (N, "menu", "options", "2"),
        "acount",
        "menu",
        "options.2",
        "unknown target node 'acount' (did you mean 'account'?)",
        others=4,  # account, lookup, say, set: unreachable now
    ),
    "unknown next": Case(
        (N, "info", "next"), "nowhere", "info", "next", "unknown target node 'nowhere'"
    ),
    "unknown on_failure": Case(
        (N, "menu", "retry", "on_failure"),
        "by",
        "menu",
        "retry.on_failure",
        "unknown target node 'by' (did you mean 'bye'?)",
    ),
    "unknown branch goto": Case(
        (N, "hours", "branches"),
        [{"when": {"business_hours": "office"}, "goto": "agnet"}],
        "hours",
        "branches[0].goto",
        "unknown target node 'agnet' (did you mean 'agent'?)",
    ),
    "unknown start": Case(
        ("start",), "mneu", "", "start", "unknown target node 'mneu' (did you mean 'menu'?)"
    ),
    "unknown zero-out target": Case(
        ("zero_out", "goto"),
        "agen",
        "",
        "zero_out.goto",
        "unknown target node 'agen' (did you mean 'agent'?)",
    ),
    "unknown queue": Case(
        (N, "agent", "queue"),
        "colections",
        "agent",
        "queue",
        "unknown queue 'colections' (did you mean 'collections'?)",
    ),
    "unknown queue, nothing close": Case(
        (N, "agent", "queue"),
        "sales",
        "agent",
        "queue",
        "unknown queue 'sales' (known: collections)",
    ),
    "unknown calendar": Case(
        (N, "hours", "branches"),
        [{"when": {"business_hours": "ofice"}, "goto": "agent"}],
        "hours",
        "branches[0].when.business_hours",
        "unknown calendar 'ofice' (did you mean 'office'?)",
    ),
    "unknown holiday calendar": Case(
        (N, "hours", "branches"),
        [{"when": {"holiday": "national"}, "goto": "agent"}],
        "hours",
        "branches[0].when.holiday",
        "unknown calendar 'national' (calendars: office)",
    ),
    # -- conditions ----------------------------------------------------------------------
    "unknown condition": Case(
        (N, "hours", "branches"),
        [{"when": {"atr": "x", "equals": "y"}, "goto": "agent"}],
        "hours",
        "branches[0].when",
        "expected a condition: {business_hours: <calendar>}, {holiday: <calendar>}, "
        "{attr: x, equals: v}, {attr: x, in: [v, ...]}, {attr: x, present: true} "
        "(did you mean 'attr'?)",
    ),
    "two tests": Case(
        (N, "hours", "branches"),
        [{"when": {"attr": "x", "equals": "y", "in": ["z"]}, "goto": "agent"}],
        "hours",
        "branches[0].when",
        "expected one of equals, in, present, got equals, in",
    ),
    "present false": Case(
        (N, "hours", "branches"),
        [{"when": {"attr": "x", "present": False}, "goto": "agent"}],
        "hours",
        "branches[0].when.present",
        "expected true (for an absent attribute, use the branch's otherwise)",
    ),
    "no branches": Case(
        (N, "hours", "branches"),
        [],
        "hours",
        "branches",
        "expected a list of {when: <condition>, goto: <node>}, got an empty list",
    ),
    "calendar condition with extra key": Case(
        (N, "hours", "branches"),
        [{"when": {"business_hours": "office", "attr": "x"}, "goto": "agent"}],
        "hours",
        "branches[0].when.attr",
        "unknown key 'attr': a business_hours condition takes business_hours",
    ),
    # -- calendars -----------------------------------------------------------------------
    "unknown time zone": Case(
        ("calendars", "office", "timezone"),
        "Asia/Jakata",
        "",
        "calendars.office.timezone",
        "unknown time zone 'Asia/Jakata' (did you mean 'Asia/Jakarta'?)",
    ),
    "bad weekday": Case(
        ("calendars", "office", "hours"),
        {"mon-fry": "08:00-17:00"},
        "",
        "calendars.office.hours.mon-fry",
        "unknown weekday 'fry' (did you mean 'fri'?): use mon, tue, wed, thu, fri, sat, sun",
    ),
    "backwards time range": Case(
        ("calendars", "office", "hours"),
        {"mon-fri": "17:00-08:00"},
        "",
        "calendars.office.hours.mon-fri",
        "expected the start before the end, got '17:00-08:00' (past midnight is two ranges: "
        '"22:00-24:00" and "00:00-06:00" on the next day)',
    ),
    "bad time": Case(
        ("calendars", "office", "hours"),
        {"sat": ["08:00-12:00", "13:00-25:00"]},
        "",
        "calendars.office.hours.sat[1]",
        "expected a time range \"HH:MM-HH:MM\" (24-hour, end up to 24:00), got '13:00-25:00'",
    ),
    "time range as a number": Case(
        ("calendars", "office", "hours"),
        {"sat": 8},
        "",
        "calendars.office.hours.sat",
        'expected a time range "HH:MM-HH:MM" or a list of them, got the number 8',
    ),
    "bad inline holiday": Case(
        ("calendars", "office", "holidays"),
        ["2026-02-30"],
        "",
        "calendars.office.holidays[0]",
        "expected a date \"YYYY-MM-DD\", got '2026-02-30'",
    ),
    "unreadable holiday file": Case(
        ("calendars", "office", "holidays"),
        "holidays/none.yaml",
        "",
        "calendars.office.holidays",
        "cannot read the holiday file {dir}/holidays/none.yaml (No such file or directory)",
    ),
    "calendar without hours": Case(
        ("calendars", "office", "hours"),
        DELETE,
        "",
        "calendars.office.hours",
        "missing (required in a calendar)",
    ),
    # -- inputs --------------------------------------------------------------------------
    "invalid regex": Case(
        (N, "account", "pattern"),
        "[0-9",
        "account",
        "pattern",
        "invalid regular expression '[0-9': unterminated character set at position 0",
    ),
    "min above max": Case(
        (N, "account", "min_length"),
        12,
        "account",
        "max_length",
        "expected at least min_length (12), got 10",
    ),
    "terminator a digit": Case(
        (N, "account", "terminator"),
        "5",
        "account",
        "terminator",
        'expected "#", "*" or false (none), got \'5\'',
    ),
    "bad store_as": Case(
        (N, "account", "store_as"),
        "account number",
        "account",
        "store_as",
        "expected an attribute name (letters, digits, _), got 'account number'",
    ),
    # -- menus and keys ------------------------------------------------------------------
    "two-digit key": Case(
        (N, "menu", "options"),
        {"1": "hours", "2": "account", "3": "info", "12": "bye"},
        "menu",
        "options.12",
        "expected a single DTMF key (0-9, *, #, A-D), got '12'",
    ),
    "letter key": Case(
        (N, "menu", "options"),
        {"1": "hours", "2": "account", "3": "info", "x": "bye"},
        "menu",
        "options.x",
        "expected a single DTMF key (0-9, *, #, A-D), got 'x'",
    ),
    "option on the repeat key": Case(
        (N, "menu", "options"),
        {"1": "hours", "2": "account", "3": "info", "9": "bye"},
        "menu",
        "options.9",
        "key 9 is this menu's repeat_key; pick another key",
    ),
    "option on the zero-out key": Case(
        (N, "menu", "options"),
        {"1": "hours", "2": "account", "3": "info", "0": "bye"},
        "menu",
        "options.0",
        "key 0 is the flow's zero-out key (zero_out.key); pick another key or set zero_out: "
        "false on this menu",
    ),
    "repeat key on the zero-out key": Case(
        (N, "menu", "repeat_key"),
        "0",
        "menu",
        "repeat_key",
        "key 0 is the flow's zero-out key (zero_out.key); pick another key or set zero_out: "
        "false on this menu",
    ),
    "repeat key of two digits": Case(
        (N, "menu", "repeat_key"),
        "99",
        "menu",
        "repeat_key",
        "expected a single DTMF key (0-9, *, #, A-D), got '99'",
    ),
    "zero-out key of two digits": Case(
        ("zero_out", "key"),
        "00",
        "",
        "zero_out.key",
        "expected a single DTMF key (0-9, *, #, A-D), got '00'",
    ),
    "no options": Case(
        (N, "menu", "options"),
        {},
        "menu",
        "options",
        'expected a mapping of key -> node ({"1": main}), got an empty mapping',
    ),
    # -- set, lookup, say, hangup --------------------------------------------------------
    "set a language the flow lacks": Case(
        (N, "set", "values"),
        {"language": "fr"},
        "set",
        "values.language",
        "expected one of the flow's languages (id, en), got 'fr'",
    ),
    "set a list": Case(
        (N, "set", "values"),
        {"skills": ["a"]},
        "set",
        "values.skills",
        "expected a string or a whole number, got a list",
    ),
    "lookup not http": Case(
        (N, "lookup", "url"),
        "ftp://crm/{account}",
        "lookup",
        "url",
        "expected an http:// or https:// URL, got 'ftp://crm/{account}'",
    ),
    "lookup template with a format": Case(
        (N, "lookup", "url"),
        "http://crm/{account:>10}",
        "lookup",
        "url",
        "expected {attribute} fields (an attribute name only), got {account...}",
    ),
    "lookup template unbalanced": Case(
        (N, "lookup", "url"),
        "http://crm/{account",
        "lookup",
        "url",
        "expected a URL template with {attribute} fields: expected '}' before end of string",
    ),
    "lookup prefix": Case(
        (N, "lookup", "store_prefix"),
        "crm.",
        "lookup",
        "store_prefix",
        "expected a prefix of letters, digits and _, got 'crm.'",
    ),
    "say kind": Case(
        (N, "say", "kind"),
        "mony",
        "say",
        "kind",
        "expected one of number, digits, money, got 'mony' (did you mean 'money'?)",
    ),
    "hangup reason": Case(
        (N, "bye", "reason"),
        "After Hours",
        "bye",
        "reason",
        "expected a reason in snake_case (after_hours), got 'After Hours'",
    ),
    # -- the flow's own keys -------------------------------------------------------------
    "unquoted DID": Case(
        ("dids",),
        [1500],
        "",
        "dids[0]",
        'expected the DID as a quoted string ("1500"): YAML reads unquoted numbers as numbers, '
        "and those starting with 0 as octal",
    ),
    "DID with letters": Case(
        ("dids",), ["15OO"], "", "dids[0]", "expected a DID of 2 to 20 digits, got '15OO'"
    ),
    "DID twice": Case(("dids",), ["1500", "1500"], "", "dids[1]", "DID 1500 is listed twice"),
    "no DIDs": Case(
        ("dids",), [], "", "dids", 'expected a list of DIDs (["1500"]), got an empty list'
    ),
    "default language not offered": Case(
        ("default_language",),
        "fr",
        "",
        "default_language",
        "expected one of languages (id, en), got 'fr'",
    ),
    "bad language code": Case(
        ("languages",),
        ["id", "English"],
        "",
        "languages[1]",
        "expected a language code such as id or en, got 'English'",
    ),
    "bad flow name": Case(
        ("flow",),
        "my flow",
        "",
        "flow",
        "expected a flow name (letters, digits, - _ .), got 'my flow'",
    ),
    "zero_out as text": Case(
        ("zero_out",),
        "0",
        "",
        "zero_out",
        "expected {key: \"0\", goto: <node>} or false, got '0'",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_given_one_mistake_when_loaded_then_the_problem_names_file_node_and_key(
    tmp_path: Path, case: Case
) -> None:
    path = flow_file(tmp_path, changed(case.path, case.value))
    problems = problems_of(path)
    expected = case.expected.replace("{dir}", str(tmp_path))
    found = [p for p in problems if (p.node, p.key, p.expected) == (case.node, case.key, expected)]
    shown = "\n".join(str(p) for p in problems)
    assert found, f"not among the problems:\n{shown}"
    (p,) = found
    assert p.file == str(path)
    assert p.line is not None
    assert str(p) == ": ".join(
        [
            f"{path}:{p.line}",
            *([f"node {case.node!r}"] if case.node else []),
            *([case.key] if case.key else []),
            expected,
        ]
    )
    assert len(problems) == 1 + case.others, shown


def test_given_a_typo_in_a_required_key_then_only_the_typo_is_reported(tmp_path: Path) -> None:
    data = changed((N, "info", "prompts"), DELETE)
    data[N]["info"]["promtps"] = ["p/info"]
    (p,) = problems_of(flow_file(tmp_path, data))
    assert (p.node, p.key, p.expected) == (
        "info",
        "promtps",
        "unknown key 'promtps' (did you mean 'prompts'?)",
    )


def test_given_many_mistakes_then_all_are_reported_in_file_order(tmp_path: Path) -> None:
    data = changed((N, "menu", "timeout"), "five")
    data[N]["agent"]["queue"] = "sales"
    data[N]["account"]["pattern"] = "("
    data["calendars"]["office"]["timezone"] = "Mars/Olympus"
    problems = problems_of(flow_file(tmp_path, data))
    assert [(p.node, p.key) for p in problems] == [
        ("", "calendars.office.timezone"),
        ("menu", "timeout"),
        ("account", "pattern"),
        ("agent", "queue"),
    ]
    lines = [p.line or 0 for p in problems]
    assert lines == sorted(lines)


def test_given_the_zero_out_key_on_a_menu_without_zero_out_then_it_is_fine(tmp_path: Path) -> None:
    data = changed((N, "menu", "options", "0"), "bye")
    data[N]["menu"]["zero_out"] = False
    data[N]["agent"]["prompts"] = ["p/hold"]
    load_flow(flow_file(tmp_path, data), known_queues=QUEUES, sound_dirs=None, max_menu_depth=4)


# ---- raw text: what a dict cannot say ---------------------------------------------------

HEAD = 'flow: t\ndids: ["1500"]\nstart: a\n'


class Raw(NamedTuple):
    text: str
    node: str
    key: str
    expected: str
    line: int | None


RAW: dict[str, Raw] = {
    "syntax error": Raw(
        HEAD + "nodes:\n  a: {type: hangup\n",
        "",
        "",
        "invalid YAML: while parsing a flow mapping expected ',' or '}', but got '<stream end>', "
        "column 1",
        6,
    ),
    "bad indentation": Raw(
        HEAD + "nodes:\n  a:\n    type: hangup\n   reason: x\n",
        "",
        "",
        "invalid YAML: while parsing a block mapping expected <block end>, but found "
        "'<block mapping start>', column 4",
        7,
    ),
    "tab": Raw(
        HEAD + "nodes:\n\ta: {type: hangup}\n",
        "",
        "",
        "invalid YAML: while scanning for the next token found character '\\t' that cannot "
        "start any token, column 1",
        5,
    ),
    "node twice": Raw(
        HEAD + "nodes:\n  a: {type: hangup}\n  a: {type: hangup, reason: x}\n",
        "a",
        "",
        "defined twice (first at line 5); YAML would keep only one",
        6,
    ),
    "key twice": Raw(
        HEAD + "nodes:\n  a:\n    type: hangup\n    reason: x\n    reason: y\n",
        "a",
        "reason",
        "given twice (first at line 7); YAML would keep only one",
        8,
    ),
    "flow key twice": Raw(
        HEAD + "start: b\nnodes: {a: {type: hangup}}\n",
        "",
        "start",
        "given twice (first at line 3); YAML would keep only one",
        4,
    ),
    "unquoted star key": Raw(
        HEAD + "nodes:\n  a: {type: menu, prompts: [x], options: {*: b}}\n  b: {type: hangup}\n",
        "",
        "",
        "invalid YAML: while scanning an alias expected alphabetic or numeric character, but "
        "found ':' (quote * and # keys: '*', '#'), column 44",
        5,
    ),
    "unquoted hash terminator": Raw(
        HEAD
        + "nodes:\n  a:\n    type: input\n    prompts: [x]\n    store_as: n\n    next: b\n"
        + "    terminator: #\n  b: {type: hangup}\n",
        "a",
        "terminator",
        'expected "#", "*" or false, got nothing: quote "#" (unquoted, # starts a comment)',
        10,
    ),
    "empty file": Raw(
        "", "", "", "expected a flow (flow, dids, start, nodes), got an empty file", None
    ),
    "a list": Raw(
        "- a\n- b\n", "", "", "expected a flow mapping (flow, dids, start, nodes), got a list", 1
    ),
    "two documents": Raw(
        HEAD + "nodes: {a: {type: hangup}}\n---\nflow: u\n",
        "",
        "",
        "invalid YAML: expected a single document in the stream but found another document, "
        "column 1",
        5,
    ),
    "missing nodes": Raw(HEAD, "", "nodes", "missing (required in a flow)", 1),
}


@pytest.mark.parametrize("case", RAW.values(), ids=RAW.keys())
def test_given_raw_yaml_when_loaded_then_the_problem_has_its_line(
    tmp_path: Path, case: Raw
) -> None:
    path = tmp_path / "raw.yaml"
    path.write_text(case.text)
    problems = problems_of(path)
    shown = "\n".join(str(p) for p in problems)
    assert [(p.file, p.node, p.key, p.expected, p.line) for p in problems] == [
        (str(path), case.node, case.key, case.expected, case.line)
    ], shown


def test_given_an_unreadable_flow_file_then_the_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "none.yaml"
    (p,) = problems_of(path)
    assert str(p) == f"{path}: cannot read the file (No such file or directory)"


def test_given_a_flow_file_not_utf8_then_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes((HEAD + "nodes: {a: {type: hangup, reason: caf\xe9}}\n").encode("latin-1"))
    (p,) = problems_of(path)
    assert p.expected.startswith("expected UTF-8 text (invalid continuation byte at byte ")


# ---- holiday files ------------------------------------------------------------------------

HOLIDAY_FLOW = (
    HEAD
    + 'calendars:\n  office:\n    timezone: Asia/Jakarta\n    hours: {mon-fri: "08:00-17:00"}\n'
    + "    holidays: hol/id.yaml\n"
    + "nodes:\n  a:\n    type: condition\n    branches: [{when: {holiday: office}, goto: b}]\n"
    + "    otherwise: b\n  b: {type: hangup}\n"
)


@pytest.mark.parametrize(
    ("text", "key", "expected", "line"),
    [
        (
            'holidays:\n  "2026-13-01": Nope\n',
            "holidays.2026-13-01",
            "expected a date \"YYYY-MM-DD\", got '2026-13-01'",
            2,
        ),
        (
            'holidays:\n  "2026-01-01": New year\n  "2026-01-01": Again\n',
            "holidays.2026-01-01",
            "given twice (first at line 2); YAML would keep only one",
            3,
        ),
        (
            'holidays:\n  "2026-01-01":\n',
            "holidays.2026-01-01",
            "expected the holiday's name, got nothing (null)",
            2,
        ),
        (
            "holiday:\n  x: y\n",
            "holiday",
            "unknown key (did you mean 'holidays'?): a holiday file takes holidays, name, source",
            1,
        ),
        (
            "holidays: [2026-01-01]\n",
            "holidays",
            'expected a mapping "YYYY-MM-DD": name, got a list',
            1,
        ),
    ],
)
def test_given_a_bad_holiday_file_then_the_holiday_file_is_named(
    tmp_path: Path, text: str, key: str, expected: str, line: int
) -> None:
    (tmp_path / "hol").mkdir()
    (tmp_path / "hol" / "id.yaml").write_text(text)
    path = tmp_path / "f.yaml"
    path.write_text(HOLIDAY_FLOW)
    problems = problems_of(path)
    assert [(p.file, p.node, p.key, p.expected, p.line) for p in problems][:1] == [
        (str(tmp_path / "hol" / "id.yaml"), "", key, expected, line)
    ]


def test_given_a_holiday_file_with_bad_yaml_then_its_line_is_given(tmp_path: Path) -> None:
    (tmp_path / "hol").mkdir()
    (tmp_path / "hol" / "id.yaml").write_text('holidays:\n  "2026-01-01": [\n')
    path = tmp_path / "f.yaml"
    path.write_text(HOLIDAY_FLOW)
    (p,) = problems_of(path)
    assert p.file == str(tmp_path / "hol" / "id.yaml")
    assert p.expected.startswith("invalid YAML: ")
    assert p.line == 3
