"""docs/configuration.md is generated from the settings model and kept in step with it."""

from __future__ import annotations

from pathlib import Path

from sambung.engine.config_doc import COMMAND, DOC, missing_descriptions, render, sections

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_reference_is_what_the_model_generates() -> None:
    committed = (ROOT / DOC).read_text(encoding="utf-8")
    assert committed == render(), (
        f"{DOC} is out of date with sambung/engine/config.py: run `{COMMAND}` and commit the result"
    )


def test_every_key_has_a_description() -> None:
    missing = missing_descriptions()
    assert missing == [], (
        "these settings have neither description= nor a comment above them in "
        f"sambung/engine/config.py: {', '.join(missing)}"
    )


def test_every_table_and_key_is_in_the_reference() -> None:
    text = render()
    for s in sections():
        assert f"## {s.header}\n" in text
        for name in s.model.model_fields:
            if name != "source":
                assert f"| `{name}` |" in text, f"{s.path}.{name}"


def test_the_reference_shows_types_defaults_constraints_and_no_secret() -> None:
    text = render()
    assert (
        "| `ring_timeout_seconds` | integer, ≥ 3, ≤ 120 | `15` | How long an agent's phone rings"
        in text
    )
    assert '| `log_format` | one of `"console"`, `"json"` | `"console"` |' in text
    assert "sambung-dev-secret" not in text  # the development password is not advertised
    assert "SAMBUNG_ACD__CALLBACKS__<KEY>" in text
    assert "From the environment: the whole list, as a JSON array of objects." in text
