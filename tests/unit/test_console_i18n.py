"""The console's text catalogue (``console/i18n.py``, ``console/messages.yaml``): it loads, every
key a page can ask for is in it in both languages, ``check`` finds what is wrong with a broken
one, and the page language is picked in the documented order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sambung.acd.agents import PHONE_OFFLINE, RONA, UNREACHABLE, AgentState
from sambung.console import app as console_app
from sambung.console.i18n import (
    DEFAULT,
    LANGUAGES,
    MESSAGES,
    Catalogue,
    catalogue,
    check,
    pick_language,
)
from sambung.dialer.http import CAMPAIGN_ACTIONS
from sambung.engine.config import ConsoleSettings
from sambung.recordings.model import MonitorMode

TEMPLATES = Path(console_app.__file__).with_name("templates")
# t("some.key") and t("some.key", name=...): a whole key written out.
LITERAL_T = re.compile(r"""\bt\(\s*"([^"]+)"\s*[,)]""")
# t("wall." ~ mode): a key built from a prefix and a value.
BUILT_T = re.compile(r"""\bt\(\s*"([^"]*)"\s*~""")
# label("state", agent.state): "state.<value>" when the catalogue has it, else the bare value.
LABEL = re.compile(r"""\blabel\(\s*"([^"]+)"\s*,""")
# cat.text(lang, "login.failed"): keys the Python side renders itself.
PY_TEXT = re.compile(r"""\bcat\.text\(\s*lang,\s*"([^"]+)"\s*[,)]""")


def template_sources() -> dict[str, str]:
    return {p.name: p.read_text("utf-8") for p in sorted(TEMPLATES.glob("*.html"))}


def test_the_shipped_catalogue_loads_and_check_finds_nothing() -> None:
    raw = yaml.safe_load(MESSAGES.read_text("utf-8"))
    assert check(raw) == []
    cat = Catalogue.load()
    assert len(cat.entries) > 50
    assert all(set(entry) == set(LANGUAGES) for entry in cat.entries.values())
    assert catalogue().entries == cat.entries


def test_every_key_a_template_writes_out_is_in_the_catalogue() -> None:
    cat = catalogue()
    used = {
        (name, key) for name, text in template_sources().items() for key in LITERAL_T.findall(text)
    }
    assert len(used) > 50  # the pattern still finds the calls
    assert sorted((name, key) for name, key in used if not cat.has(key)) == []


def test_every_key_the_console_code_renders_is_in_the_catalogue() -> None:
    source = Path(console_app.__file__).read_text("utf-8")
    keys = set(PY_TEXT.findall(source))
    assert {"login.failed", "login.rate_limited", "disp.saved", "wall.done"} <= keys
    assert sorted(k for k in keys if not catalogue().has(k)) == []


def test_templates_build_keys_only_from_the_prefixes_covered_below() -> None:
    # If a template starts building keys from another prefix, add its values to the tables below.
    built = {p for text in template_sources().values() for p in BUILT_T.findall(text)}
    assert built == {"card.", "wall."}
    labelled = {p for text in template_sources().values() for p in LABEL.findall(text)}
    assert labelled == {"state", "reason", "campaign"}


BUILT_KEYS: list[tuple[str, str]] = [
    *[("state", s.value) for s in AgentState],
    *[("card", phase) for phase in ("offered", "connected", "ended")],
    *[("wall", mode.value) for mode in MonitorMode],
    *[("wall", mode) for mode in ("listen", "whisper", "barge")],
    *[("wall", action) for action in CAMPAIGN_ACTIONS],
    *[("wall", action) for action in ("start", "pause", "resume", "stop")],
    *[("reason", r) for r in ConsoleSettings().pause_reasons],
    # Reasons the engine pauses an agent with by itself.
    *[("reason", r) for r in (PHONE_OFFLINE, RONA, UNREACHABLE)],
    *[("campaign", s) for s in ("stopped", "running", "paused")],
]


@pytest.mark.parametrize(("prefix", "value"), sorted(set(BUILT_KEYS)))
def test_every_built_key_is_in_the_catalogue_in_both_languages(prefix: str, value: str) -> None:
    key = f"{prefix}.{value}"
    assert catalogue().has(key), key
    for lang in LANGUAGES:
        assert catalogue().text(lang, key) != f"[{key}]"


def test_a_missing_key_shows_itself_on_the_page() -> None:
    assert catalogue().text("en", "no.such_key") == "[no.such_key]"


@pytest.mark.parametrize(
    ("lang", "key", "values", "expected"),
    [
        ("en", "login.title", {}, "Sign in"),
        ("id", "login.title", {}, "Masuk"),
        ("en", "disp.saved", {"code": "PTP"}, "Saved: PTP."),
        ("id", "disp.saved", {"code": "PTP"}, "Tersimpan: PTP."),
        (
            "en",
            "login.rate_limited",
            {"seconds": 42},
            "Too many failed attempts. Try again in 42 seconds.",
        ),
        ("xx", "login.title", {}, "Masuk"),  # an unknown language falls back to the default
    ],
)
def test_text_fills_in_placeholders(
    lang: str, key: str, values: dict[str, Any], expected: str
) -> None:
    assert catalogue().text(lang, key, **values) == expected


# ---- check() on broken catalogues --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ([], "the file must map keys to {en: ..., id: ...}"),
        ("text", "the file must map keys to {en: ..., id: ...}"),
        ({"a.b": {"en": "A"}}, "a.b must have exactly id and en"),
        ({"a.b": {"id": "A"}}, "a.b must have exactly id and en"),
        ({"a.b": {"en": "A", "id": "A", "fr": "A"}}, "a.b must have exactly id and en"),
        ({"a.b": "A"}, "a.b must have exactly id and en"),
        ({"a.b": {"en": "A {n}", "id": "A"}}, "a.b: placeholders differ between en and id"),
        ({"a.b": {"en": "{n}", "id": "{m}"}}, "a.b: placeholders differ between en and id"),
        ({"a.b": {"en": "", "id": "A"}}, "a.b has an empty text"),
        ({"a.b": {"en": "  ", "id": "A"}}, "a.b has an empty text"),
        ({"a.b": {"en": 3, "id": "A"}}, "a.b has an empty text"),
        ({"nodot": {"en": "A", "id": "A"}}, "'nodot' is not a dotted lower-case key"),
        ({"Upper.case": {"en": "A", "id": "A"}}, "'Upper.case' is not a dotted lower-case key"),
        ({"a..b": {"en": "A", "id": "A"}}, "'a..b' is not a dotted lower-case key"),
        ({"a.b-c": {"en": "A", "id": "A"}}, "'a.b-c' is not a dotted lower-case key"),
        ({"a.b.": {"en": "A", "id": "A"}}, "'a.b.' is not a dotted lower-case key"),
        ({3: {"en": "A", "id": "A"}}, "3 is not a dotted lower-case key"),
    ],
)
def test_check_names_what_is_wrong(raw: object, problem: str) -> None:
    assert check(raw) == [problem]


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"a.b": {"en": "A", "id": "B"}},
        {"a.b_c.d": {"en": "{x} and {y}", "id": "{y} dan {x}"}},  # order may differ
        {"a.b": {"en": "{x} {x}", "id": "{x}"}},  # the same names, used any number of times
    ],
)
def test_check_accepts_good_catalogues(raw: object) -> None:
    assert check(raw) == []


def test_check_reports_every_problem_not_just_the_first() -> None:
    raw = {
        "ok.key": {"en": "A", "id": "A"},
        "missing.lang": {"en": "A"},
        "bad.placeholders": {"en": "{a}", "id": "{b}"},
        "Bad": {"en": "A", "id": "A"},
    }
    assert check(raw) == [
        "missing.lang must have exactly id and en",
        "bad.placeholders: placeholders differ between en and id",
        "'Bad' is not a dotted lower-case key",
    ]


def test_load_refuses_a_broken_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "messages.yaml"
    path.write_text('a.b: {en: "Hello {name}", id: "Halo"}\n', "utf-8")
    with pytest.raises(ValueError, match=r"messages\.yaml: a\.b: placeholders differ"):
        Catalogue.load(path)


# ---- pick_language -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie", "profile", "accept", "expected"),
    [
        # the person's own choice (the cookie) comes first
        ("en", "id", "id", "en"),
        ("id", "en", "en", "id"),
        # then their profile
        (None, "en", "id", "en"),
        ("fr", "en", "id", "en"),  # an unknown cookie value is passed over
        ("", "en", None, "en"),
        # then the browser's Accept-Language, first supported tag in the order sent
        (None, None, "en-US,en;q=0.9", "en"),
        (None, None, "fr-FR, id;q=0.8, en;q=0.5", "id"),
        (None, "de", "EN-gb", "en"),
        (None, None, "id-ID", "id"),
        # then the default
        (None, None, None, DEFAULT),
        (None, None, "", DEFAULT),
        (None, None, "fr, de;q=0.5", DEFAULT),
        ("xx", "yy", "zz", DEFAULT),
    ],
)
def test_pick_language_order(
    cookie: str | None, profile: str | None, accept: str | None, expected: str
) -> None:
    assert pick_language(cookie, profile, accept) == expected


def test_the_default_language_is_indonesian() -> None:
    assert DEFAULT == "id"
    assert DEFAULT in LANGUAGES


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), st.text(max_size=5), st.sampled_from(LANGUAGES)),
    st.one_of(st.none(), st.text(max_size=5), st.sampled_from(LANGUAGES)),
    st.one_of(st.none(), st.text(max_size=40)),
)
def test_pick_language_always_answers_a_supported_language(
    cookie: str | None, profile: str | None, accept: str | None
) -> None:
    lang = pick_language(cookie, profile, accept)
    assert lang in LANGUAGES
    if cookie in LANGUAGES:
        assert lang == cookie
    elif profile in LANGUAGES:
        assert lang == profile
