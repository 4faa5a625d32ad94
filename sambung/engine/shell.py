"""What the shell hands every feature once the engine runs.

The composition root builds these once (the pool, the fact writer, the ARI connection, the
call dispatcher) and passes them to each feature's ``start``; a feature keeps what it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import asyncpg

from sambung.asterisk.ari.client import AriClient
from sambung.asterisk.telephony import AriTelephony
from sambung.engine.calls import CallDispatcher
from sambung.engine.facts import Fact
from sambung.engine.metrics import Metrics
from sambung.engine.tasks import TaskSet


@dataclass(frozen=True)
class Shell:
    metrics: Metrics
    pool: asyncpg.Pool
    # Facts are recorded here and written by the writer in the background (engine/facts.py).
    record: Callable[[Fact], None]
    telephony: AriTelephony
    ari: AriClient
    # For outbound HTTP (CRM lookups): one pooled session for the whole engine.
    http: aiohttp.ClientSession
    dispatcher: CallDispatcher
    # Background work a feature starts is kept here, logged, and cancelled at shutdown.
    tasks: TaskSet
    instance_id: str
    # The id of the Asterisk the engine is connected to (it changes when Asterisk restarts).
    asterisk_id: Callable[[], str]
