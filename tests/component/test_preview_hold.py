"""Preview dialling passes every check the pacer applies: a record is dialled only by the agent
it was shown to, while the hold lasts, and only once it is due (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import sambung.acd as acd_feature
import sambung.dialer as dialer_feature
from sambung.acd.service import AcdService
from sambung.dialer import campaign_queues as with_campaign_queues
from sambung.dialer.service import CampaignStateError, DialerService
from sambung.engine.calendar_config import build_calendars
from sambung.engine.config import Settings, load_settings
from sambung.engine.errors import NotFound
from sambung.engine.metrics import build_metrics
from tests.dbutil import migrated_pool

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = "kolek-30"


class Dispatcher:
    """Takes the call task and does not run it: only the decision to dial is under test."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def start_owned(
        self,
        call_id: str,
        work: Callable[[Any], Coroutine[Any, Any, None]],
        direction: str = "outbound",
    ) -> bool:
        assert direction == "dialer"  # the dialer's lines are counted as its own
        self.started.append(call_id)
        work(None).close()  # never awaited: close the coroutine cleanly
        return True


def settings() -> Settings:
    s = load_settings(ROOT / "examples" / "sambung.toml", env={})
    data = s.model_dump(mode="python")
    year = datetime.now(UTC).year
    data["calendars"]["open"] = {"package": False, "years": [year - 1, year, year + 1]}
    for c in data["dialer"]["campaigns"]:
        c.update(calendar="open", days=list(range(7)), start="00:00", end="23:59")
        c["last_dial_margin_minutes"] = 0
        if c["name"] == CAMPAIGN:
            c["mode"] = "preview"
    data["dialer"]["dnc_files"] = []
    return Settings.model_validate(data)


@asynccontextmanager
async def preview_floor() -> AsyncIterator[tuple[DialerService, Any, Dispatcher]]:
    s = settings()
    metrics = build_metrics()
    dialer_config = dialer_feature.config(s.dialer)
    acd = AcdService(
        with_campaign_queues(acd_feature.config(s.acd, s.calls), dialer_config), metrics
    )
    dialer = DialerService(
        dialer_config,
        acd,
        metrics,
        engine_instance="test",
        calendars=build_calendars(s.calendars, datetime.now(UTC).date()),
    )
    for aid in ("siti", "budi"):
        acd.agents.phone_state(acd.agents.get(aid), True)
        acd.agents.login(aid, "test")
        acd.agents.make_ready(aid, "test")
    disp = Dispatcher()
    async with migrated_pool() as pool:
        await dialer.start(pool, disp, object(), lambda f: None, lambda: "ast")  # type: ignore[arg-type]
        dialer.campaigns[CAMPAIGN].state = "running"
        async with pool.acquire() as conn:
            for i in range(3):
                await conn.execute(
                    """INSERT INTO dial_records (campaign, account_id, name, phones,
                           amount_due, days_past_due, bucket, zone, zone_source, language)
                       VALUES ($1, $2, 'Debitur', $3, 1500000, 12, '1-30', 'Asia/Jakarta',
                               'default', 'id')""",
                    CAMPAIGN,
                    f"ACC{i}",
                    [f"+62812000000{i:02d}"],
                )
        yield dialer, pool, disp


async def record_ids(pool: Any) -> list[int]:
    return [
        r["record_id"] for r in await pool.fetch("SELECT record_id FROM dial_records ORDER BY 1")
    ]


async def test_given_a_record_nobody_holds_then_an_agent_cannot_dial_it() -> None:
    async with preview_floor() as (dialer, pool, disp):
        ids = await record_ids(pool)
        with pytest.raises(CampaignStateError, match="not held"):
            await dialer.preview_dial(CAMPAIGN, ids[0], "siti")
        assert disp.started == []


async def test_given_a_record_held_by_another_then_it_is_neither_shown_nor_dialled() -> None:
    async with preview_floor() as (dialer, pool, disp):
        shown = await dialer.preview_next(CAMPAIGN, "budi")
        assert shown is not None
        with pytest.raises((NotFound, CampaignStateError)):
            await dialer.preview_dial(CAMPAIGN, shown["record_id"], "siti")
        other = await dialer.preview_next(CAMPAIGN, "siti")
        assert other is not None
        assert other["record_id"] != shown["record_id"]
        # The pacer does not see held records either.
        async with pool.acquire() as conn, conn.transaction():
            from sambung.dialer import store

            due = await store.due_records(conn, CAMPAIGN, datetime.now(UTC), 10)
        assert shown["record_id"] not in [d.record_id for d in due]
        assert disp.started == []


async def test_given_a_record_not_yet_due_then_even_its_holder_cannot_dial_it() -> None:
    async with preview_floor() as (dialer, pool, disp):
        shown = await dialer.preview_next(CAMPAIGN, "siti")
        assert shown is not None
        later = datetime.now(UTC) + timedelta(hours=1)
        await pool.execute(
            "UPDATE dial_records SET next_at = $2 WHERE record_id = $1", shown["record_id"], later
        )
        with pytest.raises(CampaignStateError, match="not due"):
            await dialer.preview_dial(CAMPAIGN, shown["record_id"], "siti")
        assert disp.started == []


async def test_given_an_expired_hold_then_the_record_is_free_again() -> None:
    async with preview_floor() as (dialer, pool, _disp):
        shown = await dialer.preview_next(CAMPAIGN, "siti")
        assert shown is not None
        past = datetime.now(UTC) - timedelta(seconds=1)
        await pool.execute(
            "UPDATE dial_records SET held_until = $2 WHERE record_id = $1", shown["record_id"], past
        )
        with pytest.raises(CampaignStateError, match="not held"):
            await dialer.preview_dial(CAMPAIGN, shown["record_id"], "siti")
        again = await dialer.preview_next(CAMPAIGN, "budi")
        assert again is not None  # nobody's record stays pinned to a hold that ran out
        assert again["record_id"] == shown["record_id"]


async def test_given_the_shown_record_then_its_holder_dials_it() -> None:
    async with preview_floor() as (dialer, pool, disp):
        shown = await dialer.preview_next(CAMPAIGN, "siti")
        assert shown is not None
        out = await dialer.preview_dial(CAMPAIGN, shown["record_id"], "siti")
        assert disp.started == [out["attempt_id"]]
        row = await pool.fetchrow(
            "SELECT state, held_by FROM dial_records WHERE record_id = $1", shown["record_id"]
        )
        assert (row["state"], row["held_by"]) == ("dialing", None)
