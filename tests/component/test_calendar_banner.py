"""The wallboard's calendar banner: a calendar that does not cover today blocks the running
campaigns that use it, and the supervisor's screen says so in their language."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sambung.console import config as console_config
from sambung.console.app import Console
from sambung.engine.config import load_settings
from sambung.engine.main import Engine

ROOT = Path(__file__).resolve().parents[2]


def engine_with(calendar: dict[str, object]) -> Engine:
    s = load_settings(ROOT / "examples" / "sambung.toml", env={})
    data = s.model_dump(mode="python")
    data["calendars"]["id-national"].update(calendar)
    return Engine(type(s).model_validate(data))


async def test_given_a_calendar_that_does_not_cover_today_then_the_board_shows_who_is_blocked() -> (
    None
):
    last_year = datetime.now(UTC).year - 1
    engine = engine_with({"years": [last_year]})
    engine.dialer.service.campaigns["kolek-30"].state = "running"
    board = await engine.wallboard.view()
    (cal,) = board["calendars"]
    assert cal["calendar"] == "id-national"
    assert cal["today_known"] is False
    assert cal["days_left"] == 0
    assert cal["blocked_campaigns"] == ["kolek-30"]  # "reminder" is not running
    assert engine.metrics.calendar_days_left.labels(calendar="id-national")._value.get() == 0
    console = Console(engine.console_services(), console_config(engine.settings.console))
    html = console.render("_board.html", "en", board=board)
    assert 'class="banner danger"' in html
    assert "campaigns kolek-30 are not dialling (calendar_missing)" in html
    html_id = console.render("_board.html", "id", board=board)
    assert "kampanye kolek-30 tidak memanggil" in html_id


async def test_given_a_calendar_that_covers_the_year_then_the_board_is_quiet(
    tmp_path: Path,
) -> None:
    year = datetime.now(UTC).year
    # Whatever the package knows by then, this file vouches for this year and the next.
    over = tmp_path / "o.yaml"
    over.write_text(f"covers: [{year}, {year + 1}]\n")
    engine = engine_with({"overrides": [over]})
    engine.dialer.service.campaigns["kolek-30"].state = "running"
    board = await engine.wallboard.view()
    assert board["calendars"] == []
    html = Console(engine.console_services(), console_config(engine.settings.console)).render(
        "_board.html", "en", board=board
    )
    assert "banner" not in html
