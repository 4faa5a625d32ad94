"""Reconciliation: after each (re)connect to Asterisk, make the engine's calls and Asterisk's
channels agree.

- Asterisk restarted: every call the engine held is gone; their rows are closed.
- Calls that vanished while the engine was disconnected are ended; the rest resync.
- Callers an earlier engine left waiting in a queue, with their place on their channel, are
  taken over (the ACD readmits each at its place and a task carries it on).
- At the first connect, rows a previous run of this instance left open are closed, but for
  the calls taken over.
- Channels in our Stasis app that no call task owns (orphans, left by a previous engine
  process, whose state cannot be rebuilt) are hung up after a short grace.
- The ACD makes sure of its holding bridges and asks every phone for its state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from sambung.asterisk.telephony import AriTelephony
from sambung.engine.calls import CallDispatcher
from sambung.engine.events import HeldCall, HeldMonitor, TelephonyConnected, TelephonyLost
from sambung.engine.facts import Fact, OpenCallsClosedFact
from sambung.engine.tasks import TaskSet

log = structlog.get_logger(__name__)

ORPHAN_GRACE_SECONDS = 2.0

# Takes over callers left waiting (at the first connect: and closes the queue entries of the
# previous run that are not taken over); returns the call ids it took.
TakeOver = Callable[[Sequence[HeldCall], Sequence[HeldMonitor], bool], set[str]]


class Reconciler:
    def __init__(
        self,
        instance_id: str,
        record: Callable[[Fact], None],
        tasks: TaskSet,
        sync_acd: Callable[[AriTelephony], Coroutine[Any, Any, None]] | None,
        take_over: TakeOver | None = None,
        *,
        sweep_every_instance: bool = False,
    ) -> None:
        # Whose open rows a restart of Asterisk or of the engine closes: this instance's, or
        # with a hot standby every engine's (see OpenCallsClosedFact).
        self._instance: str | None = None if sweep_every_instance else instance_id
        self._record = record
        self._tasks = tasks
        self._sync_acd = sync_acd
        self._take_over = take_over
        self.asterisk_id = ""
        self._dispatcher: CallDispatcher | None = None
        self._telephony: AriTelephony | None = None

    def bind(self, dispatcher: CallDispatcher, telephony: AriTelephony) -> None:
        # The dispatcher and the ARI connection are built after this (they report to it).
        self._dispatcher = dispatcher
        self._telephony = telephony

    def on_connection(self, event: TelephonyConnected | TelephonyLost) -> None:
        if isinstance(event, TelephonyLost):
            return
        dispatcher, tel = self._dispatcher, self._telephony
        assert dispatcher is not None
        assert tel is not None
        if self._sync_acd is not None:
            self._tasks.start(self._sync_acd(tel), name="acd-sync")
        self.asterisk_id = event.asterisk_id
        owned = set(dispatcher.active_calls)
        now = datetime.now(UTC)
        if event.restarted:
            n = dispatcher.end_calls(None, "asterisk_restart")
            log.warning("reconcile.asterisk_restarted", calls_lost=n)
            # The calls' tasks end their own legs, with the talk time they know.
            self._record(
                OpenCallsClosedFact(self._instance, [], now, "asterisk_restart", close_legs=False)
            )
            return
        vanished = owned - event.live_call_ids
        if vanished:
            dispatcher.end_calls(vanished, "lost_while_disconnected")
            log.warning("reconcile.calls_vanished", count=len(vanished))
        if not event.first_connect:
            dispatcher.resync_calls(owned & event.live_call_ids)
        # Before anything is closed: a call taken over keeps its rows open.
        taken: set[str] = set()
        if self._take_over is not None and (event.held or event.monitors or event.first_connect):
            taken = self._take_over(event.held, event.monitors, event.first_connect)
        if event.first_connect:
            # Rows left open by a previous run of this instance whose calls were not taken over:
            # those calls cannot be resumed.
            kept = sorted(owned | taken)
            self._record(OpenCallsClosedFact(self._instance, kept, now, "engine_restart"))
        orphans = event.live_call_ids - owned - taken
        if orphans:
            log.warning("reconcile.orphans", count=len(orphans))
            self._tasks.start(self._hangup_orphans(orphans), name="hangup-orphans")
        if event.strays:
            # An agent's phone or a debtor's line still ringing for an engine that is gone:
            # the agent is freed (the caller, taken over, is offered again) and no debtor is
            # left with a line nobody would take when answered.
            log.warning("reconcile.strays", count=len(event.strays))
            self._tasks.start(self._hangup_strays(event.strays), name="hangup-strays")

    async def _hangup_strays(self, channel_ids: frozenset[str]) -> None:
        assert self._telephony is not None
        for cid in channel_ids:
            log.warning("reconcile.stray_hangup", channel=cid)
            await self._telephony.hangup_orphan(cid)

    async def _hangup_orphans(self, call_ids: frozenset[str]) -> None:
        # A call that entered Stasis while we were reconciling shows up in GET /channels before
        # its StasisStart reaches the dispatcher (the stream holds events until reconciliation
        # is done). Give those a moment to be claimed; only what is still unowned is an orphan
        # (a call left by a previous engine process, whose state we cannot rebuild).
        await asyncio.sleep(ORPHAN_GRACE_SECONDS)
        assert self._telephony is not None
        assert self._dispatcher is not None
        for cid in call_ids - set(self._dispatcher.active_calls):
            log.warning("reconcile.orphan_hangup", call_id=cid)
            await self._telephony.hangup_orphan(cid)
