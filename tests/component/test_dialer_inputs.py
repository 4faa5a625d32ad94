"""The pacer's live inputs from the floor (real PostgreSQL, the ACD's own agents): an agent
who will not come back free after this call is not counted to."""

from __future__ import annotations

from tests.component.test_preview_hold import CAMPAIGN, preview_floor


async def test_an_agent_leaving_after_this_call_is_not_counted_to_come_free() -> None:
    async with preview_floor() as (dialer, _, _):
        agents = dialer.acd.agents
        for aid, call in (("siti", "c1"), ("budi", "c2")):
            agents.reserve(aid, call)
            agents.ringing(aid, call)
            agents.answered(aid, call)
        agents.pause("budi", "break", "test")  # asked during the call: after it
        inp = dialer.inputs(CAMPAIGN, 10)
        assert (inp.ready_agents, len(inp.talk_elapsed)) == (0, 1)

        for aid, call in (("siti", "c1"), ("budi", "c2")):
            agents.call_ended(aid, call, 30)
        inp = dialer.inputs(CAMPAIGN, 10)
        # Both are in wrap-up; only siti's timer will make her ready.
        assert (len(inp.talk_elapsed), len(inp.wrap_elapsed)) == (0, 1)

        agents.phone_state(agents.get("siti"), False)
        inp = dialer.inputs(CAMPAIGN, 10)
        assert inp.wrap_elapsed == ()
