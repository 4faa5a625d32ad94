"""Channels a dead engine made and left ringing outside our app (an agent's phone being
offered a caller, a dialer line or a callback's customer leg) are hung up by the next engine
at its connect: nobody would act on their answer. Channels that are not an engine's are left
alone. The whole engine against the fake ARI."""

from __future__ import annotations

import asyncio

from tests.component.test_adoption import queue_sections, until
from tests.fakes.fake_ari import FakeAri, channel_json
from tests.integration.harness import engine_database, engine_running


async def test_given_ringing_channels_a_dead_engine_made_then_the_next_hangs_them_up(
    fake_ari: FakeAri,
) -> None:
    # Not in Stasis(sambung): still ringing (Stasis starts at the answer), or in AMD.
    made = ["leg-0123456789abcdef0123", "dlr-0123456789abcdef01234567", "cb-1-abc-customer"]
    for cid in made:
        fake_ari.channels[cid] = channel_json(cid, state="Ringing", app="elsewhere")
    fake_ari.channels["someone-else"] = channel_json("someone-else", app="elsewhere")
    async with (
        engine_database() as database,
        engine_running(database, fake_ari.base_url, **queue_sections()),
    ):

        async def all_hung_up() -> bool:
            gone = {
                r.path.rsplit("/", 1)[1] for r in fake_ari.requests_to("DELETE", "/channels/.*")
            }
            return set(made) <= gone

        await until(all_hung_up, "the strays hung up")
        await asyncio.sleep(0.3)
        deleted = [r.path for r in fake_ari.requests_to("DELETE", "/channels/.*")]
        assert "/channels/someone-else" not in deleted
        assert len(deleted) == len(made)
