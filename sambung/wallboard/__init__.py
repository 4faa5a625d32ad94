"""The supervisors' wallboard: the floor at a glance (queues, agents by state, campaigns with
today's promises to pay) and the calendars a supervisor must hear about.

``setup`` builds it from the ACD, the dialer and the holiday calendars; ``Wallboard.add_routes``
adds ``GET /api/v1/wallboard``. The console's wallboard page renders the same figures.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sambung.engine.calendar_config import CalendarBook
from sambung.wallboard.http import add_routes

if TYPE_CHECKING:
    from sambung.acd.feature import Acd
    from sambung.dialer.feature import Dialer


class Wallboard:
    def __init__(self, acd: Acd, dialer: Dialer, calendars: CalendarBook) -> None:
        self._acd = acd
        self._dialer = dialer
        self._calendars = calendars

    async def view(self) -> dict[str, Any]:
        """Queues (without the waiting callers' data), agents with time in state, campaigns."""
        queues = [{k: v for k, v in q.items() if k != "calls"} for q in self._acd.service.view()]
        agents = [a.view() for a in self._acd.service.agents.all()]
        now = datetime.now(UTC)
        for a in agents:
            since = datetime.fromisoformat(str(a["since"]))
            a["seconds_in_state"] = round(max(0.0, (now - since).total_seconds()), 1)
        promises = await self._dialer.promises_today()
        campaigns = []
        for name in self._dialer.service.campaigns:
            view = self._dialer.service.view(name)
            view["promises_today"] = promises.get(name, {"count": 0, "amount": "0"})
            campaigns.append(view)
        return {
            "at": now.isoformat(),
            "queues": queues,
            "agents": agents,
            "campaigns": campaigns,
            "calendars": self.calendar_alerts(),
        }

    def calendar_alerts(self) -> list[dict[str, object]]:
        """Calendars a supervisor must hear about: lapsing within 60 days, or blocking the
        dialer today (with the campaigns they block)."""
        self._calendars.refresh()
        blocked = self._dialer.service.calendar_blocked()
        out = []
        for c in self._calendars.view():
            stopped = sorted(n for n, cal in blocked.items() if cal == c["calendar"])
            if c["warning"] is None and not stopped:
                continue
            out.append({**c, "blocked_campaigns": stopped})
        return out

    def add_routes(self, app: web.Application) -> None:
        add_routes(app, self.view)


def setup(acd: Acd, dialer: Dialer, calendars: CalendarBook) -> Wallboard:
    return Wallboard(acd, dialer, calendars)


__all__ = ["Wallboard", "setup"]
