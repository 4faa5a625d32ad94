"""Call recordings by policy, their move to the recordings store, retention, downloads, and
supervisors' listen / whisper / barge on agents' live calls.

``config`` converts the shell's settings into the feature's own frozen config
(``RecordingsConfig`` in ``recordings/model.py``); ``setup`` builds the feature from it for the
composition root (engine/main.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import asyncpg
from aiohttp import web

from sambung.engine.facts import Fact
from sambung.recordings.http import add_routes
from sambung.recordings.journal import Journal
from sambung.recordings.model import RecordingsConfig
from sambung.recordings.monitor import MonitorService
from sambung.recordings.ports import MonitorAri, RecordingAri
from sambung.recordings.service import RecordingService
from sambung.recordings.storage import LocalDirectoryStore
from sambung.recordings.store import monitor_session

if TYPE_CHECKING:
    from sambung.engine.config import Settings


class RecordingsAri(RecordingAri, MonitorAri, Protocol):
    pass


@dataclass
class Recordings:
    service: RecordingService
    monitor: MonitorService

    def add_routes(self, app: web.Application) -> None:
        add_routes(app, self.service, self.monitor)

    async def close(self, *, hand_over: bool = False) -> None:
        """At shutdown, after the calls are gone: end monitoring (or, ``hand_over``, leave the
        sessions on talks handed over to the next engine), stop live recordings."""
        await self.monitor.stop_all(hand_over=hand_over)
        await self.service.close()


def config(settings: Settings) -> RecordingsConfig:
    # The only way into the converter: the rest of the feature never reads the shell's settings.
    from sambung.recordings.settings import recordings_config

    return recordings_config(settings)


def setup(
    config: RecordingsConfig,
    ari: RecordingsAri,
    pool: asyncpg.Pool,
    record: Callable[[Fact], None],
    campaign_of: Callable[[str], str | None],
) -> Recordings:
    """The feature, with the journal of earlier runs replayed (its jobs carry on)."""
    c = config
    journal = Journal(c.journal)
    service = RecordingService(
        c.rules,
        ari,
        LocalDirectoryStore(c.store_dir),
        journal,
        pool,
        record,
        campaign_of=campaign_of,
        retention_interval=c.retention_interval_seconds,
        retry_max=c.retry_max_seconds,
    )
    service.replay()
    monitor = MonitorService(
        ari,
        service.talk_of,
        c.supervisor_phones,
        record,
        ring_seconds=c.monitor_ring_seconds,
        read_session=lambda session_id: monitor_session(pool, session_id),
    )
    service.talk_end_listeners.append(monitor.call_ended)
    return Recordings(service, monitor)
