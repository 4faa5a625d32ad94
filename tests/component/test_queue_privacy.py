"""Waiting callers' personal data: an agent sees only the calls offered to them; supervisors
and admins see the whole floor (UU 27/2022 on personal data: only those who need it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.component.test_auth_http import bearer, stack


class FakeQueues:
    def view(self) -> list[dict[str, Any]]:
        def call(cid: str, agent: str | None) -> dict[str, Any]:
            return {
                "call_id": cid,
                "caller_number": "+6281234567890",
                "caller_name": "Budi Santoso",
                "attributes": {"account": "12345678", "crm_amount_due": "1250000"},
                "agent_id": agent,
                "state": "offering" if agent else "waiting",
            }

        return [
            {
                "queue": "dialer-kolek-30",
                "waiting": 3,
                "longest_wait_seconds": 12.0,
                "calls": [call("c-1", None), call("c-2", "siti"), call("c-3", "made")],
            }
        ]


async def test_given_an_agent_then_only_the_calls_offered_to_them_are_shown(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as s:
        s.acd.queues_view = FakeQueues().view  # type: ignore[method-assign]
        r = await s.client.get("/api/v1/queues", headers=bearer(await s.token("siti")))
        assert r.status == 200
        (q,) = (await r.json())["queues"]
        assert [c["call_id"] for c in q["calls"]] == ["c-2"]
        assert q["waiting"] == 3  # the figures stay: how busy the floor is, not who is on it
        assert "Budi" not in str([c for c in q["calls"] if c["call_id"] != "c-2"])


async def test_given_a_supervisor_or_admin_then_the_whole_floor_is_shown(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        s.acd.queues_view = FakeQueues().view  # type: ignore[method-assign]
        for who in ("rina", "ayu"):
            r = await s.client.get("/api/v1/queues", headers=bearer(await s.token(who)))
            assert r.status == 200
            (q,) = (await r.json())["queues"]
            assert [c["call_id"] for c in q["calls"]] == ["c-1", "c-2", "c-3"]
