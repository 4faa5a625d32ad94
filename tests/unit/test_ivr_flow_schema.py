"""The flow format as published: ``docs/ivr-flows.md`` and ``docs/ivr-flow.schema.json``.

The schema is for editors, the loader is the judge; these tests keep them telling the same
story. Every valid flow we have (examples, fixtures, the tables' base flow, the reference's
complete example) validates; the invalid flows of ``test_ivr_loader_errors.py`` are refused
by the schema too, except those only the loader can see (listed, and checked to pass the
schema, so the list stays exact); the schema names the same node types and keys as the
loader; and on the values the schema checks with a pattern (DTMF keys, prompts, weekdays),
Hypothesis finds no flow that one accepts and the other refuses.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # (it ships no type hints)
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sambung.engine.calendars import build_calendar
from sambung.ivr.errors import FlowError
from sambung.ivr.loader import load_flow
from sambung.ivr.loader_calendars import CALENDAR_KEYS, WEEKDAYS
from sambung.ivr.loader_flow import FLOW_KEYS, ZERO_OUT_KEYS
from sambung.ivr.loader_nodes import NODE_KINDS, RETRY_KEYS, SAY_KINDS
from sambung.ivr.loader_values import DTMF_KEYS, MEDIA_SCHEMES, SOUND_EXTENSIONS
from sambung.ivr.loader_yaml import YamlMap, YamlSeq, parse
from sambung.ivr.model import EnvHeader, LookupNode
from tests.unit.test_ivr_loader_errors import BASE, CASES, changed

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ivr-flows.md"
SCHEMA_FILE = ROOT / "docs" / "ivr-flow.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
QUEUES = {"collections"}
# The engine's shared calendar as it is in mid 2026 (the package covers 2025-2027).
NATIONAL = {"id-national": build_calendar("id-national", today=date(2026, 6, 1))}

# Mistakes of the error tables a schema cannot see: references to other nodes, queues and
# calendars, what lies on disk or in the environment, and rules across two keys.
LOADER_ONLY = {
    "unknown target",
    "unknown next",
    "unknown on_failure",
    "unknown branch goto",
    "unknown start",
    "unknown zero-out target",
    "unknown queue",
    "unknown queue, nothing close",
    "unknown calendar",
    "unknown holiday calendar",
    "unknown time zone",
    "backwards time range",
    "bad inline holiday",
    "unreadable holiday file",
    "invalid regex",
    "min above max",
    "option on the repeat key",
    "option on the zero-out key",
    "repeat key on the zero-out key",
    "set a language the flow lacks",
    "default language not offered",
}


def as_json(data: Any) -> Any:
    """A parsed document as an editor's YAML extension sees it: JSON, keys as text."""
    if isinstance(data, YamlMap):
        return {str(k): as_json(v) for k, v in data.items()}
    if isinstance(data, YamlSeq):
        return [as_json(v) for v in data]
    return data


def document(text: str) -> Any:
    data, duplicates = parse(text)
    assert not duplicates
    return as_json(data)


def schema_problems(data: Any) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(data)]


def flows_in(folder: Path) -> list[Path]:
    """The YAML files of ``folder`` (and below) that are flows: a mapping with ``flow:``."""
    found = []
    for path in sorted(folder.rglob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and "flow" in data:
            found.append(path)
    return found


def doc_example() -> str:
    """The reference's complete example: the first YAML block under its heading."""
    text = DOC.read_text()
    section = text.split("\n## A complete example\n", 1)[1]
    return section.split("```yaml\n", 1)[1].split("\n```", 1)[0] + "\n"


# ---- valid flows pass -----------------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


VALID_FILES = flows_in(ROOT / "examples") + flows_in(ROOT / "tests" / "fixtures" / "flows")


def test_given_the_repository_then_its_example_and_fixture_flows_are_found() -> None:
    names = {p.name for p in VALID_FILES}
    assert {"collections.yaml", "all_kinds.yaml"} <= names
    assert "prompts.yaml" not in names  # the prompts' sentences: not a flow


@pytest.mark.parametrize("path", VALID_FILES, ids=[p.name for p in VALID_FILES])
def test_given_a_valid_flow_file_then_the_loader_and_the_schema_accept_it(path: Path) -> None:
    load_flow(path, known_queues=QUEUES, sound_dirs=None, max_menu_depth=4)
    assert schema_problems(document(path.read_text())) == []


def test_given_the_base_flow_of_the_error_tables_then_the_schema_accepts_it() -> None:
    assert schema_problems(document(yaml.safe_dump(BASE))) == []


def test_given_the_complete_example_of_the_reference_then_it_loads_and_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference's example is a valid flow (documentation that does not rot)."""
    monkeypatch.setenv("CRM_AUTH", "Bearer example")
    text = doc_example()
    path = tmp_path / "doc.yaml"
    path.write_text(text)
    flow = load_flow(
        path, known_queues=QUEUES, sound_dirs=None, max_menu_depth=4, calendars=NATIONAL
    )
    assert flow.name == "collections"
    assert {n for n, _ in flow.nodes} >= {"language", "main", "account", "lookup", "closed"}
    office = flow.calendar("office")
    assert office.holidays == {date(2026, 12, 31)}  # the hotline's own day
    assert office.national is NATIONAL["id-national"]  # the national ones, shared
    lookup = flow.node("lookup")
    assert isinstance(lookup, LookupNode)
    assert lookup.headers == (EnvHeader("Authorization", "CRM_AUTH", "Bearer example"),)
    assert schema_problems(document(text)) == []


# ---- invalid flows are refused --------------------------------------------------------------


@pytest.mark.parametrize("name", CASES.keys())
def test_given_a_mistake_of_the_error_tables_then_the_schema_refuses_it_if_it_can_see_it(
    name: str,
) -> None:
    case = CASES[name]
    data = document(yaml.safe_dump(changed(case.path, case.value)))
    if name in LOADER_ONLY:
        assert schema_problems(data) == [], "the schema sees this now: drop it from LOADER_ONLY"
    else:
        assert schema_problems(data) != []


def test_given_the_loader_only_list_then_every_name_is_a_case_of_the_tables() -> None:
    assert set(CASES) >= LOADER_ONLY


HEAD = 'flow: t\ndids: ["1500"]\nstart: a\n'


@pytest.mark.parametrize(
    "text",
    [
        # an unquoted # starts a comment: the terminator is null
        HEAD + "nodes:\n  a:\n    type: input\n    prompts: [x]\n    store_as: n\n    next: b\n"
        "    terminator: #\n  b: {type: hangup}\n",
        "- a\n- b\n",  # a list, not a flow
        HEAD,  # no nodes
        HEAD + "nodes:\n  a: {type: hangup, reason: x}\n  b: {type: play, prompts: [], next: a}\n",
        HEAD + "nodes:\n  a: {type: play, prompts: x, next: a, barge_in: yes please}\n",
        HEAD + "nodes:\n  a: {type: lookup, url: 'http://crm/{a}', next: a, on_failure: a,\n"
        "      headers: {Authorization: Bearer secret}}\n",
        HEAD + "nodes:\n  a: {type: lookup, url: 'http://crm/{a}', next: a, on_failure: a,\n"
        "      headers: {Host: {env: CRM_HOST}}}\n",
        HEAD + "nodes:\n  a: {type: menu, prompts: [x], options: {'1': a}, repeat_key: true}\n",
        HEAD + "calendars: {c: {timezone: UTC, hours: {'mon-fri': ['08:00-12:00', 8]}}}\n"
        "nodes:\n  a: {type: hangup}\n",
    ],
    ids=[
        "unquoted hash",
        "a list",
        "no nodes",
        "empty prompt list",
        "not a boolean",
        "literal header",
        "reserved header",
        "repeat key true",
        "time range a number",
    ],
)
def test_given_raw_yaml_the_loader_refuses_then_the_schema_refuses_it_too(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(text)
    with pytest.raises(FlowError):
        load_flow(path, known_queues=QUEUES, sound_dirs=None, max_menu_depth=4, environ={})
    assert schema_problems(document(text)) != []


# ---- the schema names what the loader knows -------------------------------------------------


def test_given_the_loader_node_types_then_the_schema_has_each_with_the_same_keys() -> None:
    defs = SCHEMA["$defs"]
    assert defs["node"]["properties"]["type"]["enum"] == list(NODE_KINDS)
    dispatched = {rule["if"]["properties"]["type"]["const"] for rule in defs["node"]["allOf"]}
    assert dispatched == set(NODE_KINDS)
    for kind, spec in NODE_KINDS.items():
        node = defs[kind]
        assert node["properties"]["type"] == {"const": kind}
        assert set(node["properties"]) == {"type", *spec.required, *spec.optional}, kind
        assert node["required"] == ["type", *spec.required], kind
        assert node["additionalProperties"] is False


def test_given_the_loader_keys_then_the_schema_objects_take_the_same() -> None:
    defs = SCHEMA["$defs"]
    objects = {
        "flow": (SCHEMA, FLOW_KEYS),
        "calendar": (defs["calendar"], CALENDAR_KEYS),
        "retry": (defs["retry"], ((), RETRY_KEYS)),
        "zero_out": (SCHEMA["properties"]["zero_out"]["anyOf"][0], (ZERO_OUT_KEYS, ())),
    }
    for what, (obj, (required, optional)) in objects.items():
        assert set(obj["properties"]) == {*required, *optional}, what
        assert set(obj.get("required", ())) == set(required), what
        assert obj["additionalProperties"] is False, what
    assert defs["say"]["properties"]["kind"]["enum"] == list(SAY_KINDS)
    assert defs["dtmf"]["anyOf"][0]["enum"] == list(DTMF_KEYS)


def prompt_ok(prompt: str) -> bool:
    return not schema_problems(
        {
            "flow": "t",
            "dids": ["15"],
            "start": "a",
            "nodes": {"a": {"type": "hangup", "prompts": prompt}},
        }
    )


def test_given_the_loader_media_schemes_and_sound_extensions_then_the_schema_knows_them() -> None:
    for scheme in MEDIA_SCHEMES:
        assert prompt_ok(f"{scheme}:x1"), scheme
    assert not prompt_ok("video:x1")
    for ext in SOUND_EXTENSIONS:
        assert not prompt_ok(f"sambung/hello.{ext}"), ext
        assert not prompt_ok(f"sound:sambung/hello.{ext}"), ext
    assert prompt_ok("sambung/hello.v2")


# ---- where both check the same thing, they agree --------------------------------------------


def loader_accepts(tmp: Path, data: dict[str, Any]) -> bool:
    path = tmp / "flow.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML: what the schema sees, the loader reads
    try:
        load_flow(path, known_queues=QUEUES, sound_dirs=None, max_menu_depth=4)
    except FlowError:
        return False
    return True


def with_menu(**menu: Any) -> dict[str, Any]:
    node = {"type": "menu", "prompts": ["p"], "options": {"1": "bye"}, **menu}
    return {
        "flow": "t",
        "dids": ["1500"],
        "start": "menu",
        "calendars": {"c": {"timezone": "UTC", "hours": {}}},
        "nodes": {"menu": node, "bye": {"type": "hangup"}},
    }


def with_hours(days: str) -> dict[str, Any]:
    data = with_menu()
    data["calendars"]["c"]["hours"] = {days: "08:00-17:00"}
    return data


DAY_WORDS = st.sampled_from([*WEEKDAYS, "Mon", "FRI", "fry", "", "mon-", "mo"])
WEEKDAY_SPECS = st.one_of(
    st.text(alphabet="montuefriwdhsa-, ", max_size=12),
    st.lists(
        st.tuples(DAY_WORDS, st.sampled_from(["", "-", " - ", "--"]), DAY_WORDS).map("".join),
        min_size=1,
        max_size=3,
    ).map(",".join),
)
PROMPTS = st.one_of(
    st.text(alphabet="abz09_./-: #", max_size=14),
    st.tuples(
        st.sampled_from(["", *[f"{s}:" for s in MEDIA_SCHEMES], "soud:", "/"]),
        st.from_regex(r"[a-z0-9_./-]{0,10}", fullmatch=True),
        st.sampled_from(["", *[f".{e}" for e in SOUND_EXTENSIONS], ".v2", " x"]),
    ).map("".join),
)
KEYS = st.one_of(
    st.sampled_from([*DTMF_KEYS, "a", "10", "", "##"]),
    st.integers(min_value=-2, max_value=12),
    st.booleans(),
    st.none(),
)
SLOW = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SLOW
@given(days=WEEKDAY_SPECS)
def test_weekdays_the_loader_and_the_schema_agree(tmp_path: Path, days: str) -> None:
    data = with_hours(days)
    assert loader_accepts(tmp_path, data) == (schema_problems(data) == []), days


@SLOW
@given(prompt=PROMPTS)
def test_prompts_the_loader_and_the_schema_agree(tmp_path: Path, prompt: str) -> None:
    data = with_menu(prompts=[prompt])
    assert loader_accepts(tmp_path, data) == (schema_problems(data) == []), prompt


@SLOW
@given(key=KEYS)
def test_repeat_keys_the_loader_and_the_schema_agree(tmp_path: Path, key: object) -> None:
    assume(str(key) != "1")  # the menu's option: a clash only the loader sees
    data = with_menu(repeat_key=key)
    assert loader_accepts(tmp_path, data) == (schema_problems(data) == []), key


# ---- the reference --------------------------------------------------------------------------


def test_given_the_reference_then_it_has_a_section_per_node_type_naming_every_key() -> None:
    text = DOC.read_text()
    for kind, spec in NODE_KINDS.items():
        heading = f"\n### `{kind}`"
        assert heading in text, kind
        section = text.split(heading, 1)[1].split("\n### ", 1)[0]
        for key in (*spec.required, *spec.optional):
            assert re.search(rf"`{key}`", section), (kind, key)


def test_given_the_reference_then_it_names_the_schema_for_editors() -> None:
    text = DOC.read_text()
    assert "# yaml-language-server: $schema=" in text
    assert SCHEMA_FILE.name in text
