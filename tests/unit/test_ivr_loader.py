"""The flow loader (``ivr/loader.py``): valid files into the model, the example hotline, flow
tables (DIDs, names, warnings), versions, the prompt check against sound folders.

The tables of invalid files are in ``test_ivr_loader_errors.py``; graph checks (unreachable,
loops, depth) and their Hypothesis property in ``test_ivr_loader_graph.py``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
import yaml

from sambung.engine.calendars import build_calendar
from sambung.engine.errors import SambungError
from sambung.engine.events import DigitPressed, PromptFinished
from sambung.ivr import menu
from sambung.ivr.errors import FlowError, FlowProblem
from sambung.ivr.flows import FlowTable, load_flow_table
from sambung.ivr.loader import load_flow, load_flows
from sambung.ivr.model import (
    AttrEquals,
    AttrIn,
    AttrPresent,
    Branch,
    Calendar,
    ConditionNode,
    EnvHeader,
    Flow,
    HangupNode,
    InBusinessHours,
    InputNode,
    IsHoliday,
    LookupNode,
    MenuNode,
    OpenSpan,
    PlayNode,
    Retry,
    SayNode,
    SetNode,
    TransferNode,
)
from sambung.ivr.speech import INDONESIAN_NUMBER_WORDS, NUMBER_PROMPT_DIR, RUPIAH_PROMPT

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "flows"
EXAMPLE = ROOT / "examples" / "flows" / "collections.yaml"
CATALOGUE = ROOT / "examples" / "flows" / "prompts.yaml"
SANDBOX_PROMPTS = ROOT / "ops" / "sounds" / "prompts.tsv"
QUEUES = {"collections"}


# The engine's shared calendar as it is in mid 2026 (the package covers 2025-2027).
NATIONAL = {"id-national": build_calendar("id-national", today=date(2026, 6, 1))}


def load(path: Path, **kw: object) -> Flow:
    opts: dict[str, object] = {
        "known_queues": QUEUES,
        "sound_dirs": None,
        "max_menu_depth": 4,
        "calendars": NATIONAL,
    }
    opts.update(kw)
    return load_flow(path, **opts)  # type: ignore[arg-type]


def load_set(paths: Iterable[Path], **kw: object) -> FlowTable:
    opts: dict[str, object] = {
        "known_queues": QUEUES,
        "sound_dirs": None,
        "max_menu_depth": 4,
        "calendars": NATIONAL,
    }
    opts.update(kw)
    return load_flows(paths, **opts)  # type: ignore[arg-type]


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


# ---- every node kind into the model -------------------------------------------------------


def test_given_every_node_kind_when_loaded_then_the_model_is_exactly_the_file() -> None:
    path = FIXTURES / "all_kinds.yaml"
    flow = load(path, calendars=None)  # the model exactly as written: no shared calendar
    retry_main = Retry(2, ("sound:sambung/no-input",), ("sound:sambung/invalid",), "closed")
    expected_nodes = (
        PlayNode("welcome", ("sound:sambung/welcome",), "hours", barge_in=False),
        ConditionNode(
            "hours",
            (
                Branch(IsHoliday("office"), "closed"),
                Branch(InBusinessHours("office"), "main"),
                Branch(AttrEquals("caller_number", "628111"), "main"),
                Branch(AttrIn("segment", frozenset({"vip", "gold"})), "main"),
                Branch(AttrPresent("crm_name"), "main"),
            ),
            "closed",
        ),
        MenuNode(
            "main",
            (
                "sound:sambung/main-menu",
                "digits:1500",
                "sound:/var/lib/sambung/custom/banner",
            ),
            (("1", "account"), ("2", "agent"), ("3", "quiet"), ("*", "set_vip"), ("#", "closed")),
            timeout_seconds=4.5,
            retry=retry_main,
            repeat_key="9",
            zero_out=True,
        ),
        SetNode("set_vip", (("segment", "vip"), ("priority", "5"), ("language", "id")), "main"),
        InputNode(
            "account",
            ("sound:sambung/enter-account",),
            store_as="account",
            next="lookup",
            min_length=6,
            max_length=10,
            terminator=None,
            first_digit_timeout_seconds=7.0,
            inter_digit_timeout_seconds=2.5,
            pattern="[1-9][0-9]+",
            retry=Retry(4, (), ("sound:sambung/invalid-account",), "agent"),
        ),
        LookupNode(
            "lookup",
            "http://127.0.0.1:8490/accounts/{account}?caller={caller_number}",
            next="say_amount",
            on_failure="agent",
            timeout_seconds=2.0,
            retries=0,
            store_prefix="crm_",
        ),
        SayNode(
            "say_amount",
            "crm_amount_due",
            "money",
            "say_account",
            ("sound:sambung/amount-due-is",),
            ("sound:sambung/thanks",),
        ),
        SayNode("say_account", "account", "digits", "main"),
        TransferNode("agent", "collections", ("sound:sambung/transferring",)),
        HangupNode("closed", ("sound:sambung/after-hours",), "after_hours"),
        HangupNode("quiet"),  # every default
    )
    week = frozenset(range(5))
    expected = Flow(
        name="all-kinds",
        dids=("1600", "1601"),
        start="welcome",
        nodes=tuple((n.id, n) for n in expected_nodes),
        default_language="en",
        languages=("id", "en"),
        calendars=(
            Calendar(
                "office",
                "Asia/Jakarta",
                (
                    OpenSpan(week, time(8), time(12)),
                    OpenSpan(week, time(13), time(17)),
                    OpenSpan(frozenset({5, 6}), time(9), time(0)),  # 24:00 is midnight
                ),
                frozenset({date(2026, 1, 1), date(2026, 8, 17), date(2026, 12, 31)}),
            ),
            Calendar("always", "UTC", (OpenSpan(frozenset(range(7)), time(0), time(0)),)),
        ),
        zero_out_key="0",
        zero_out_target="agent",
        source=str(path),
        version=hashlib.sha256(
            path.read_bytes() + (FIXTURES / "holidays.yaml").read_bytes()
        ).hexdigest(),
    )
    assert flow == expected
    assert flow.node("lookup") == expected_nodes[5]  # the index is built


def test_given_defaults_when_loaded_then_the_model_defaults_apply(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "min.yaml",
        """
flow: min
dids: ["1500"]
start: m
nodes:
  m: {type: menu, prompts: [a], options: {"1": bye, "2": i}}
  i: {type: input, prompts: [a], store_as: x, next: bye}
  bye: {type: hangup}
""",
    )
    flow = load(path)
    m = flow.node("m")
    assert m == MenuNode("m", ("sound:a",), (("1", "bye"), ("2", "i")))
    assert flow.node("i") == InputNode("i", ("sound:a",), "x", "bye")
    assert (flow.languages, flow.default_language) == (("id", "en"), "id")
    assert (flow.zero_out_key, flow.zero_out_target) == (None, None)  # no zero_out: none
    assert flow.calendars == ()
    assert flow.version == hashlib.sha256(path.read_bytes()).hexdigest()
    assert flow.source == str(path)


# ---- the example hotline ------------------------------------------------------------------


def test_given_the_example_flow_when_loaded_without_sounds_then_it_is_valid() -> None:
    flows = load_set([EXAMPLE], known_queues={"collections"}, sound_dirs=None)
    flow = flows.by_did["1500"]
    assert list(flows.by_did) == ["1500"]
    assert flow.name == "collections"
    assert flow.languages == ("id", "en")
    assert (flow.zero_out_key, flow.zero_out_target) == ("0", "agent")
    office = flow.calendar("office")
    assert office.timezone == "Asia/Jakarta"
    assert set(office.open_spans) == {
        OpenSpan(frozenset(range(5)), time(8), time(17)),
        OpenSpan(frozenset({5}), time(8), time(12)),
    }
    # Indonesia's 17 national holidays of 2026 (SKB 3 Menteri) come from the shared calendar,
    # and 2027's too; 2028 is not covered yet, so its days are closed (fail closed).
    assert office.holidays == frozenset()  # no days of the hotline's own
    assert office.national is NATIONAL["id-national"]
    assert len([d for d in office.national.days if d.year == 2026]) == 17
    for d in (date(2026, 1, 1), date(2026, 8, 17), date(2026, 12, 25), date(2027, 1, 1)):
        assert office.closed_day(d)
    assert not office.closed_day(date(2027, 1, 4))
    assert office.closed_day(date(2028, 1, 4))
    assert flows.warnings == ()


def test_given_the_example_flow_when_walked_then_it_does_what_issue_4_asks() -> None:
    """Language 2, main menu 1, an account with #: the lookup the stub answers, said as money;
    in business hours (Monday 10:00 Jakarta) and on a holiday (closed)."""
    flow = load(EXAMPLE)
    cid = "c1"
    monday_10_jakarta = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    state, cmds = menu.start(cid, flow, monday_10_jakarta, {"caller_number": "0811"})

    def finish_prompts(state: menu.IvrState) -> tuple[menu.IvrState, list[menu.Command]]:
        out: list[menu.Command] = []
        while state.playing:
            state, more = menu.step(state, PromptFinished(cid, state.playing[0], monday_10_jakarta))
            out += more
        return state, out

    def press(state: menu.IvrState, keys: str) -> tuple[menu.IvrState, list[menu.Command]]:
        out: list[menu.Command] = []
        for k in keys:
            state, more = menu.step(state, DigitPressed(cid, k, 100, monday_10_jakarta))
            out += more
        return state, out

    assert state.node_id == "language"
    state, _ = press(state, "2")
    assert (state.node_id, state.language) == ("main", "en")
    state, _ = press(state, "1")
    assert state.node_id == "account"
    state, cmds = press(state, "12345678#")
    lookups = [c for c in cmds if isinstance(c, menu.Lookup)]
    assert [c.url for c in lookups] == ["http://127.0.0.1:8490/accounts/12345678"]
    state, cmds = menu.step(
        state, menu.LookupDone("lookup", True, {"amount_due": "1250000"}, monday_10_jakarta)
    )
    plays = [c for c in cmds if isinstance(c, menu.Play)]
    assert plays[0].media[0] == "sound:sambung/amount-due-is"
    assert plays[0].media[-1] == f"sound:{RUPIAH_PROMPT}"
    state, _ = finish_prompts(state)
    assert state.node_id == "main"  # back to the main menu
    state, _ = press(state, "0")  # zero-out
    assert state.node_id == "agent"
    state, cmds = finish_prompts(state)  # "please hold...", then the transfer
    assert [c.queue for c in cmds if isinstance(c, menu.Transfer)] == ["collections"]

    independence_day = datetime(2026, 8, 17, 3, 0, tzinfo=UTC)  # a Monday, 10:00 Jakarta
    state, _ = menu.start(cid, flow, independence_day, {})
    state, _ = menu.step(state, DigitPressed(cid, "1", 100, independence_day))
    assert state.node_id == "closed"
    assert state.end_reason == "after_hours"


def _sandbox_prompts() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in SANDBOX_PROMPTS.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        lang, _voice, name, _text = line.split("\t")
        out.setdefault(f"sambung/{name}", set()).add(lang)
    return out


def test_given_the_example_flow_then_every_prompt_has_an_english_and_indonesian_sentence() -> None:
    """ops/prompts.py makes the WAVs from examples/flows/prompts.yaml; the sandbox's own
    prompts (ops/sounds/prompts.tsv) and the say node's rupiah come from elsewhere."""
    flow = load(EXAMPLE)
    catalogue = yaml.safe_load(CATALOGUE.read_text())
    sandbox = _sandbox_prompts()
    used: set[str] = set()
    for _, node in flow.nodes:
        for attr in ("prompts", "prompts_before", "prompts_after"):
            used.update(getattr(node, attr, ()))
        retry = getattr(node, "retry", None)
        if retry is not None:
            used.update(retry.no_input_prompts + retry.invalid_prompts)
    names = {m.removeprefix("sound:") for m in used}
    assert all(m.startswith("sound:") for m in used)
    # The queues' and agents' phones' prompts: named in the ACD's code and the example
    # settings (queue greetings, whispers), said in both languages as well.
    acd_sources = [
        *sorted((ROOT / "sambung" / "acd").glob("*.py")),
        *sorted((ROOT / "sambung" / "dialer").glob("*.py")),
        ROOT / "examples" / "sambung.toml",
    ]
    for source in acd_sources:
        names.update(re.findall(r"sound:(sambung/[a-z0-9-]+)", source.read_text()))
    for name in names:
        langs = set(catalogue.get(name, {})) | sandbox.get(name, set())
        assert {"en", "id"} <= langs, name
    assert RUPIAH_PROMPT not in catalogue  # ops/prompts.py's NUMBERS owns it (trimmed)
    unused = set(catalogue) - names
    assert not unused, f"catalogue entries no flow uses: {unused}"


def test_given_the_example_when_loaded_through_the_engine_flow_table_then_1500_is_ours() -> None:
    table = load_flow_table(
        [EXAMPLE], queues=["collections"], sounds_root=None, max_menu_depth=4, reserved_dids={}
    )
    assert table.by_did["1500"].name == "collections"


# ---- flow tables --------------------------------------------------------------------------


def test_given_two_files_claiming_one_did_when_loaded_then_both_files_are_named() -> None:
    a, b = FIXTURES / "clash_a.yaml", FIXTURES / "clash_b.yaml"
    with pytest.raises(FlowError) as err:
        load_set([a, b])
    (p,) = err.value.problems
    assert (p.file, p.node, p.key) == (str(b), "", "dids[1]")
    assert p.expected == f"DID 1701 is already claimed by flow 'clash-a' in {a}"
    assert p.line == 2
    assert str(a) in str(err.value)
    assert str(b) in str(err.value)


def test_given_two_files_with_one_flow_name_when_loaded_then_refused() -> None:
    a, again = FIXTURES / "clash_a.yaml", FIXTURES / "clash_a_again.yaml"
    with pytest.raises(FlowError) as err:
        load_set([a, again])
    (p,) = err.value.problems
    assert (p.file, p.key) == (str(again), "flow")
    assert p.expected == f"flow name 'clash-a' is already used by {a}"


def test_given_one_file_listed_twice_when_loaded_then_refused() -> None:
    a = FIXTURES / "clash_a.yaml"
    with pytest.raises(FlowError, match="listed twice"):
        load_set([a, a])


def test_given_several_files_when_loaded_then_every_did_maps_to_its_flow() -> None:
    flows = load_set([FIXTURES / "clash_a.yaml", FIXTURES / "all_kinds.yaml"])
    assert dict(flows.by_did).keys() == {"1700", "1701", "1600", "1601"}
    assert flows.by_did["1601"] is flows.by_did["1600"]
    assert [f.name for f in flows.flows] == ["clash-a", "all-kinds"]
    assert len(flows.by_did) == 4
    assert "1700" in flows.by_did


def test_given_errors_in_several_files_when_loaded_then_all_are_reported(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", 'flow: a\ndids: ["1"]\nstart: x\nnodes: {x: {type: hangup}}\n')
    b = write(tmp_path, "b.yaml", 'flow: b\ndids: ["22"]\nstart: y\nnodes: {x: {type: hangup}}\n')
    with pytest.raises(FlowError) as err:
        load_set([a, b])
    files = [p.file for p in err.value.problems]
    assert str(a) in files
    assert str(b) in files


def test_given_no_files_when_loaded_then_an_empty_set() -> None:
    flows = load_set([])
    assert (len(flows.by_did), flows.warnings) == (0, ())


# ---- versions -----------------------------------------------------------------------------


def test_given_a_holiday_file_changes_when_loaded_again_then_the_version_changes(
    tmp_path: Path,
) -> None:
    shutil.copy(FIXTURES / "all_kinds.yaml", tmp_path / "f.yaml")
    shutil.copy(FIXTURES / "holidays.yaml", tmp_path / "holidays.yaml")
    v1 = load(tmp_path / "f.yaml").version
    assert load(tmp_path / "f.yaml").version == v1  # stable
    with (tmp_path / "holidays.yaml").open("a") as f:
        f.write('  "2026-12-24": Christmas eve\n')
    v2 = load(tmp_path / "f.yaml").version
    assert v2 != v1
    assert date(2026, 12, 24) in load(tmp_path / "f.yaml").calendar("office").holidays


# ---- the error type -----------------------------------------------------------------------


def test_flow_error_names_file_node_key_and_shows_every_problem() -> None:
    err = FlowError(
        [
            FlowProblem("f.yaml", "main", "options.2", "unknown target node 'acount'", 12),
            FlowProblem("f.yaml", "", "dids[0]", "expected a DID"),
        ]
    )
    assert isinstance(err, SambungError)
    assert err.error_id == "ivr.flow_invalid"
    assert (err.file, err.node, err.key) == ("f.yaml", "main", "options.2")
    assert err.expected == "unknown target node 'acount'"
    assert str(err).splitlines() == [
        "2 problems:",
        "f.yaml:12: node 'main': options.2: unknown target node 'acount'",
        "f.yaml: dids[0]: expected a DID",
    ]
    single = FlowError.single("f.yaml", "", "dids", "DID 1500 is already used")
    assert str(single) == "f.yaml: dids: DID 1500 is already used"
    with pytest.raises(ValueError, match="at least one"):
        FlowError([])


# ---- prompts against the sound folders ----------------------------------------------------


def sounds(
    tmp: Path, en: Iterable[str], id_: Iterable[str], ext: str = "wav"
) -> dict[str, list[Path]]:
    dirs = {"en": tmp / "sounds" / "en", "id": tmp / "sounds" / "id"}
    for lang, names in (("en", en), ("id", id_)):
        dirs[lang].mkdir(parents=True, exist_ok=True)
        for name in names:
            f = dirs[lang] / f"{name}.{ext}"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"RIFF")
    return {lang: [d] for lang, d in dirs.items()}


PROMPT_FLOW = """
flow: p
dids: ["1500"]
start: hello
nodes:
  hello: {type: play, prompts: [sambung/hello, "digits:123", "sound:/abs/x"], next: menu}
  menu:
    type: menu
    prompts: [sambung/menu]
    options: {"1": bye}
    retry: {no_input: [sambung/hello]}
  bye: {type: hangup, prompts: ["sound:sambung/bye"]}
"""


def test_given_a_prompt_missing_only_in_indonesian_then_one_warning_and_the_flow_loads(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "p.yaml", PROMPT_FLOW)
    dirs = sounds(
        tmp_path, ["sambung/hello", "sambung/menu", "sambung/bye"], ["sambung/menu", "sambung/bye"]
    )
    flows = load_set([path], sound_dirs=dirs)
    assert "1500" in flows.by_did
    (w,) = flows.warning_details  # once, though sambung/hello is used twice
    assert (w.file, w.node, w.key) == (str(path), "hello", "prompts[0]")
    assert w.expected.startswith("prompt sambung/hello is missing in id (")
    assert "plays in English (and 1 more use)" in w.expected
    assert flows.warnings == (str(w),)


def test_given_a_prompt_missing_in_english_then_an_error_even_if_indonesian_has_it(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "p.yaml", PROMPT_FLOW)
    dirs = sounds(
        tmp_path,
        ["sambung/hello", "sambung/menu"],
        ["sambung/hello", "sambung/menu", "sambung/bye"],
    )
    with pytest.raises(FlowError) as err:
        load_set([path], sound_dirs=dirs)
    (p,) = err.value.problems
    assert (p.node, p.key) == ("bye", "prompts[0]")
    assert p.expected.startswith("prompt sambung/bye not found in English, the fallback: no ")
    assert str(tmp_path / "sounds" / "en") in p.expected


@pytest.mark.parametrize("ext", ["wav", "gsm", "ulaw", "alaw", "sln", "g722"])
def test_given_any_asterisk_format_then_the_prompt_is_found(tmp_path: Path, ext: str) -> None:
    path = write(tmp_path, "p.yaml", PROMPT_FLOW)
    names = ["sambung/hello", "sambung/menu", "sambung/bye"]
    flows = load_set([path], sound_dirs=sounds(tmp_path, names, names, ext))
    assert flows.warnings == ()


def test_given_no_sound_dirs_then_prompts_are_not_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", PROMPT_FLOW)
    assert load_set([path], sound_dirs=None).warnings == ()


def test_given_a_language_without_a_folder_then_warnings_say_so(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", PROMPT_FLOW)
    names = ["sambung/hello", "sambung/menu", "sambung/bye"]
    dirs = sounds(tmp_path, names, names)
    del dirs["id"]
    flows = load_set([path], sound_dirs=dirs)
    assert len(flows.warnings) == 3
    assert all("no sounds folder for id" in w for w in flows.warnings)


SAY_FLOW = """
flow: s
dids: ["1500"]
start: say
nodes:
  say: {type: say, kind: money, value: amount, next: bye}
  bye: {type: hangup}
"""


def test_given_a_money_say_then_rupiah_and_the_indonesian_number_words_are_required(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "s.yaml", SAY_FLOW)
    words = [f"{NUMBER_PROMPT_DIR}/{w}" for w in INDONESIAN_NUMBER_WORDS]
    ok = sounds(tmp_path, [RUPIAH_PROMPT], [RUPIAH_PROMPT, *words])
    assert load_set([path], sound_dirs=ok).warnings == ()

    (tmp_path / "sounds" / "id" / f"{NUMBER_PROMPT_DIR}/juta.wav").unlink()
    (tmp_path / "sounds" / "en" / f"{RUPIAH_PROMPT}.wav").unlink()
    with pytest.raises(FlowError) as err:
        load_set([path], sound_dirs=ok)
    assert [(p.node, p.key) for p in err.value.problems] == [("say", "kind")] * 2
    text = str(err.value)
    assert "prompt sambung/rupiah not found in English" in text
    assert "say needs the Indonesian number words in id" in text
    assert "missing sambung/num/juta" in text


def test_given_only_digits_said_then_only_the_ten_digit_words_are_required(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "s.yaml", SAY_FLOW.replace("kind: money", "kind: digits"))
    digits = ["nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan"]
    dirs = sounds(tmp_path, [], [f"{NUMBER_PROMPT_DIR}/{w}" for w in digits])
    assert load_set([path], sound_dirs=dirs).warnings == ()  # no rupiah, no juta needed
    (tmp_path / "sounds" / "id" / f"{NUMBER_PROMPT_DIR}/nol.wav").unlink()
    with pytest.raises(FlowError, match=r"missing sambung/num/nol$"):
        load_set([path], sound_dirs=dirs)


def test_given_anchors_and_merge_keys_then_shared_settings_work_and_overrides_are_no_duplicates(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "anchors.yaml",
        """
flow: anchors
dids: ["1500"]
start: a
nodes:
  a:
    type: menu
    prompts: [a]
    options: {"1": b, "2": c}
    retry: &retry {attempts: 2, no_input: [no-input], on_failure: bye}
  b: &menu
    type: menu
    prompts: [b]
    options: {"1": bye}
    timeout: 4
    retry: *retry
  c:
    <<: *menu
    timeout: 8
  bye: {type: hangup}
""",
    )
    flow = load(path)
    b, c = flow.node("b"), flow.node("c")
    assert isinstance(b, MenuNode)
    assert isinstance(c, MenuNode)
    assert (b.timeout_seconds, c.timeout_seconds) == (4.0, 8.0)
    assert b.retry == c.retry == Retry(2, ("sound:no-input",), (), "bye")


# ---- lookup headers from the environment, sensitive inputs ----------------------------------

HEADER_FLOW = """
flow: h
dids: ["1500"]
start: account
nodes:
  account:
    type: input
    prompts: [sambung/enter-account]
    store_as: account
    sensitive: true
    next: lookup
  lookup:
    type: lookup
    url: "http://crm/accounts/{account}"
    headers:
HEADERS
    next: bye
    on_failure: bye
  bye: {type: hangup}
"""


def header_flow(tmp: Path, headers: str) -> Path:
    return write(tmp, "h.yaml", HEADER_FLOW.replace("HEADERS", headers))


def test_given_lookup_headers_from_the_environment_then_the_node_carries_their_values(
    tmp_path: Path,
) -> None:
    path = header_flow(
        tmp_path, "      Authorization: {env: CRM_AUTH}\n      X-Api-Key: {env: CRM_KEY}"
    )
    flow = load(path, environ={"CRM_AUTH": "Bearer abc", "CRM_KEY": "k-123"})
    lookup = flow.node("lookup")
    assert isinstance(lookup, LookupNode)
    assert lookup.headers == (
        EnvHeader("Authorization", "CRM_AUTH", "Bearer abc"),
        EnvHeader("X-Api-Key", "CRM_KEY", "k-123"),
    )
    assert "abc" not in repr(lookup)
    assert "k-123" not in repr(flow)


def test_given_an_input_marked_sensitive_then_the_node_says_so(tmp_path: Path) -> None:
    flow = load(header_flow(tmp_path, "      A: {env: A}"), environ={"A": "1"})
    node = flow.node("account")
    assert isinstance(node, InputNode)
    assert node.sensitive is True


@pytest.mark.parametrize(
    ("headers", "environ", "key", "expected"),
    [
        pytest.param(
            "      Authorization: {env: CRM_AUTH}",
            {},
            "headers.Authorization.env",
            "environment variable CRM_AUTH is not set",
            id="missing variable",
        ),
        pytest.param(
            "      Authorization: Bearer s3cret",
            {},
            "headers.Authorization",
            "expected {env: VARIABLE}: header values come from environment variables, never "
            "from the flow file",
            id="a literal secret",
        ),
        pytest.param(
            "      Authorization: {value: s3cret}",
            {},
            "headers.Authorization.value",
            "unknown key 'value': a header takes env",
            id="a literal under another key",
        ),
        pytest.param(
            "      Authorization: {env: 1BAD}",
            {},
            "headers.Authorization.env",
            "expected an environment variable name, got '1BAD'",
            id="bad variable name",
        ),
        pytest.param(
            "      Authorization: {env: CRM_AUTH}",
            {"CRM_AUTH": "a\r\nX-Evil: 1"},
            "headers.Authorization.env",
            "environment variable CRM_AUTH is empty or holds a line break",
            id="a line break in the value",
        ),
        pytest.param(
            '      "Bad Name": {env: A}',
            {"A": "1"},
            "headers.Bad Name",
            "expected a header name (letters, digits, -), got 'Bad Name'",
            id="bad header name",
        ),
        pytest.param(
            "      Host: {env: A}",
            {"A": "1"},
            "headers.Host",
            "header Host is set by the HTTP client; leave it out",
            id="a header the client sets",
        ),
    ],
)
def test_given_a_bad_lookup_header_then_the_problem_names_file_node_and_key(
    tmp_path: Path, headers: str, environ: dict[str, str], key: str, expected: str
) -> None:
    path = header_flow(tmp_path, headers)
    with pytest.raises(FlowError) as err:
        load(path, environ=environ)
    # (a literal under another key is also missing its env: two problems, one asserted)
    problem = next(p for p in err.value.problems if p.key == key)
    assert (problem.file, problem.node, problem.expected) == (str(path), "lookup", expected)
    assert problem.line is not None
    assert "s3cret" not in str(err.value)


def test_given_a_missing_header_variable_then_the_process_environment_is_what_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = header_flow(tmp_path, "      Authorization: {env: SAMBUNG_TEST_CRM_AUTH}")
    monkeypatch.delenv("SAMBUNG_TEST_CRM_AUTH", raising=False)
    with pytest.raises(FlowError, match="SAMBUNG_TEST_CRM_AUTH is not set"):
        load(path)
    monkeypatch.setenv("SAMBUNG_TEST_CRM_AUTH", "Bearer z")
    lookup = load(path).node("lookup")
    assert isinstance(lookup, LookupNode)
    assert lookup.headers[0].value == "Bearer z"
