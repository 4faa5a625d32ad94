"""Call recordings by policy, their move to the recordings store, retention, downloads, and
supervisors' listen / whisper / barge on agents' live calls.

``setup`` builds the feature from the settings for the composition root (engine/main.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import asyncpg
from aiohttp import web

from engine.facts import Fact
from recordings.http import add_routes
from recordings.journal import Journal
from recordings.model import Policy, Rules, ScopeRules
from recordings.monitor import MonitorService
from recordings.ports import MonitorAri, RecordingAri
from recordings.service import RecordingService
from recordings.storage import LocalDirectoryStore

if TYPE_CHECKING:
    from engine.config import RecordingScopeSettings, Settings


class RecordingsAri(RecordingAri, MonitorAri, Protocol):
    pass


@dataclass
class Recordings:
    service: RecordingService
    monitor: MonitorService

    def add_routes(self, app: web.Application) -> None:
        add_routes(app, self.service, self.monitor)

    async def close(self) -> None:
        """At shutdown, after the calls are gone: end monitoring, stop live recordings."""
        await self.monitor.stop_all()
        await self.service.close()


def rules_from(settings: Settings) -> Rules:
    r = settings.recordings
    default = ScopeRules(Policy(r.policy), r.retention_days, tuple(r.announcement))

    def scope(o: RecordingScopeSettings) -> ScopeRules:
        return ScopeRules(
            Policy(o.policy) if o.policy is not None else default.policy,
            o.retention_days if o.retention_days is not None else default.retention_days,
            tuple(o.announcement) if o.announcement is not None else default.announcement,
        )

    return Rules(
        default,
        {name: scope(o) for name, o in r.queues.items()},
        {name: scope(o) for name, o in r.campaigns.items()},
    )


def setup(
    settings: Settings,
    ari: RecordingsAri,
    pool: asyncpg.Pool,
    record: Callable[[Fact], None],
    campaign_of: Callable[[str], str | None],
) -> Recordings:
    """The feature, with the journal of earlier runs replayed (its jobs carry on)."""
    r = settings.recordings
    journal = Journal(settings.engine.spool_dir / f"recordings-{settings.engine.instance_id}.jsonl")
    service = RecordingService(
        rules_from(settings),
        ari,
        LocalDirectoryStore(r.store_dir),
        journal,
        pool,
        record,
        campaign_of=campaign_of,
        retention_interval=r.retention_interval_seconds,
        retry_max=settings.database.retry_max_seconds,
    )
    service.replay()
    monitor = MonitorService(
        ari,
        service.talk_of,
        r.supervisor_phones,
        record,
        ring_seconds=r.monitor_ring_seconds,
    )
    service.talk_end_listeners.append(monitor.call_ended)
    return Recordings(service, monitor)
