"""The ACD feature object: what ``setup`` builds and the rest of the engine uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from acd import store
from acd.call import QueueCallInfo, QueueRunner, TalkHooks
from acd.call_index import CallIndex
from acd.callback import CallbackRunner
from acd.desk import DispositionDesk
from acd.features import FeatureCodes
from acd.http import add_routes
from acd.hub import AgentHub
from acd.presence import Presence
from acd.service import (
    AcdService,
    CallbackHistory,
    CallbackLookupFailed,
    Entry,
    Offer,
    TransferRequest,
)
from asterisk.telephony import AriTelephony
from auth.service import AuthService
from engine.calls import CallInbox
from engine.config import AcdSettings, CallSettings
from engine.db import DB_ERRORS
from engine.errors import BadRequest, NotFound
from engine.events import CallOffered, DeviceChanged
from engine.facts import Fact
from engine.metrics import Metrics
from engine.shell import Shell

log = structlog.get_logger(__name__)


class Acd:
    """The ACD as the rest of the engine sees it."""

    def __init__(
        self,
        settings: AcdSettings,
        calls: CallSettings,
        metrics: Metrics,
        instance_id: str,
        run_id: str,
    ) -> None:
        self.settings = settings
        self._calls = calls
        self.metrics = metrics
        self.run_id = run_id
        self.service = AcdService(settings, metrics)
        self.hub = AgentHub()
        self.index = CallIndex(self.service.agents)
        self.hub.taps.append(self.index.hear)
        self.service.start_callback = self._start_callback
        self.service.callback_lookup = self._callback_history
        self._queued: set[str] = set()
        self._shell: Shell | None = None
        # Before any other feature listens to the agents (the dialer does): a state change is
        # recorded and on the agent's screen before anything it sets off.
        self.presence = Presence(self.service, self.hub, self._record, instance_id, run_id)
        self.queues: QueueRunner | None = None
        self._callbacks: CallbackRunner | None = None
        self._features: FeatureCodes | None = None
        self.desk = DispositionDesk(self.service, self.index, self._record, self.in_queue)

    # ---- wiring ---------------------------------------------------------------------------

    async def start(self, shell: Shell, talk_hooks: TalkHooks | None) -> None:
        """Attach to the running engine; agents take back their last state."""
        self._shell = shell
        self.index.pool = shell.pool
        self.desk.pool = shell.pool
        s = self.settings
        self.queues = QueueRunner(
            self.service,
            shell.telephony,
            shell.record,
            shell.metrics,
            self.hub,
            max_silent_seconds=self._calls.max_silent_seconds,
            talk_hooks=talk_hooks,
        )
        self._callbacks = CallbackRunner(
            self.service,
            shell.telephony,
            shell.record,
            shell.metrics,
            self.hub,
            shell.instance_id,
            shell.asterisk_id,
            s.callback_trunk,
        )
        self._features = FeatureCodes(
            self.service.agents,
            {a.id: a.pin.get_secret_value() for a in s.agents},
            shell.telephony,
            shell.record,
            shell.metrics,
            shell.instance_id,
            shell.asterisk_id,
        )
        await self.presence.restore(shell.pool)

    def add_routes(
        self, app: web.Application, auth: AuthService | None, session_check_seconds: float
    ) -> None:
        add_routes(app, self, auth, session_check_seconds)

    def on_device(self, event: DeviceChanged) -> None:
        self.presence.device(event)

    async def sync(self, telephony: AriTelephony) -> None:
        """After each (re)connect to Asterisk (see acd/presence.py)."""
        if self.service.queues or self.service.agents.all():
            await self.presence.sync(telephony)

    def device_subscriptions(self) -> list[str]:
        """Registration and use of every agent's phone, without the event volume of an
        endpoint subscription (ari-notes 1.4 and pitfall 13)."""
        return [f"deviceState:{a.profile.device}" for a in self.service.agents.all()]

    def _record(self, fact: Fact) -> None:
        assert self._shell is not None, "the ACD records facts only once started"
        self._shell.record(fact)

    # ---- calls ----------------------------------------------------------------------------

    async def feature_code(self, offer: CallOffered, inbox: CallInbox) -> None:
        assert self._features is not None
        await self._features.handle(offer, inbox)

    def takes_queue(self, queue: str) -> bool:
        return queue in self.service.queues

    async def queue_call(self, info: QueueCallInfo, inbox: CallInbox) -> None:
        assert self.queues is not None
        self._queued.add(info.call_id)
        try:
            await self.queues.run(info, inbox)
        finally:
            self._queued.discard(info.call_id)

    def in_queue(self, call_id: str) -> bool:
        """Whether the call is waiting in a queue or with an agent (it can be transferred)."""
        return call_id in self._queued

    def transfer(self, call_id: str, queue: str | None, agent_id: str | None) -> None:
        if (queue is None) == (agent_id is None):
            raise BadRequest("give exactly one of 'queue' or 'agent_id'")
        if queue is not None:
            self.service.queue(queue)
        if agent_id is not None:
            agent = self.service.agents.get(agent_id)
            if not agent.profile.queues:
                raise BadRequest(f"agent {agent_id!r} serves no queue to wait in")
        assert self._shell is not None
        inbox = self._shell.dispatcher.inbox_of(call_id)
        if inbox is None or call_id not in self._queued:
            raise NotFound(f"call {call_id!r} is not in a queue or with an agent")
        inbox.post_local(TransferRequest(queue, agent_id))

    def _start_callback(self, entry: Entry, offer: Offer) -> None:
        assert self._shell is not None
        cb = self._callbacks
        assert cb is not None
        attempt = f"{entry.call_id}-{entry.callback_attempts + 1}-{offer.leg_id[-6:]}"

        async def work(inbox: CallInbox) -> None:
            await cb.run(attempt, entry, offer, inbox)

        if not self._shell.dispatcher.start_owned(attempt, work, direction="callback"):
            self.service.agents.offer_failed(offer.agent_id, entry.call_id, "busy")
            self.service.back_to_queue(entry, offer.agent_id, "busy")

    async def _callback_history(self, e164: str, raw: str, since: datetime) -> CallbackHistory:
        """What PostgreSQL knows about a number the ACD may call back (do-not-call, callbacks
        made); CallbackLookupFailed when it cannot say."""
        if self._shell is None:
            raise CallbackLookupFailed("no database yet")
        try:
            async with self._shell.pool.acquire() as conn:
                dnc, dials = await store.callback_history(
                    conn, e164, (raw, e164.removeprefix("+")), since
                )
        except DB_ERRORS as err:
            raise CallbackLookupFailed("the database did not answer") from err
        return CallbackHistory(dnc, dials)

    # ---- for the API and the console -----------------------------------------------------

    def queues_view(self) -> list[dict[str, Any]]:
        return self.service.view()

    def agent_view(self, agent_id: str) -> dict[str, object]:
        return self.service.agents.get(agent_id).view()

    async def handled_by(self, call_id: str, agent_id: str) -> bool:
        return await self.index.handled_by(call_id, agent_id)

    async def disposition(
        self,
        call_id: str,
        agent_id: str,
        code: str,
        note: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        await self.desk.save(call_id, agent_id, code, note, details)

    def agents_view(self) -> list[dict[str, object]]:
        return [a.view() for a in self.service.agents.all()]

    def agent_action(self, agent_id: str, action: str, reason: str = "") -> dict[str, object]:
        return self.service.agents.act(agent_id, action, reason, "api").view()
