"""The ACD feature object: what ``setup`` builds and the rest of the engine uses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from sambung.acd import store
from sambung.acd.agents import AgentState
from sambung.acd.call import QueueCallInfo, QueueRunner, TalkHooks, bridge_for_queue
from sambung.acd.call_index import CallIndex
from sambung.acd.callback import CallbackRunner
from sambung.acd.desk import DispositionDesk
from sambung.acd.events import CallShown
from sambung.acd.facts import (
    CallbackPendingFact,
    CallbackSettledFact,
    OpenEntriesClosedFact,
    QueueLeftFact,
)
from sambung.acd.features import FeatureCodes
from sambung.acd.http import add_routes
from sambung.acd.hub import AgentHub
from sambung.acd.model import AcdConfig
from sambung.acd.place import (
    ADOPTABLE_KINDS,
    OWNED_KINDS,
    PlaceTag,
    PlaceUnreadable,
    parse_place,
)
from sambung.acd.presence import Presence
from sambung.acd.queue_machine import bridge_for_call
from sambung.acd.safeguard import EngineBeat
from sambung.acd.service import (
    AcdService,
    CallbackHistory,
    CallbackLookupFailed,
    Entry,
    Offer,
    TransferRequest,
    UnknownQueue,
)
from sambung.asterisk.telephony import AriTelephony
from sambung.auth.service import AuthService
from sambung.engine.calls import CallInbox
from sambung.engine.db import DB_ERRORS
from sambung.engine.errors import BadRequest, NotFound, TelephonyError
from sambung.engine.events import CallOffered, DeviceChanged, HeldCall
from sambung.engine.facts import Fact
from sambung.engine.metrics import Metrics
from sambung.engine.shell import Shell

log = structlog.get_logger(__name__)

CallWork = Callable[[CallInbox], Coroutine[Any, Any, None]]
# A feature that owns the entries of one kind (the dialer's live answers): given the call, its
# readmitted entry, its place and the ACD's own way to carry it on, the task that carries it
# on, or None when the feature does not take it.
Adopter = Callable[[str, Entry, PlaceTag, CallWork], CallWork | None]

# A call taken over waits this long at most for PostgreSQL to say who the caller is (the IVR's
# inputs and lookups); then it goes on with what its channel says (number, name, DID).
CONTEXT_LOOKUP_SECONDS = 1.0
# A callback restored at start waits at least this long (see Acd._restore_callbacks): more
# than the orphan sweep takes to end legs a dead engine left up.
CALLBACK_RESTART_HOLD_SECONDS = 30.0


class Acd:
    """The ACD as the rest of the engine sees it."""

    def __init__(
        self,
        settings: AcdConfig,
        metrics: Metrics,
        instance_id: str,
        run_id: str,
        *,
        sweep_every_instance: bool = False,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.instance_id = instance_id
        # Whose open queue entries the first connect closes (but for those taken over): this
        # instance's, or with a hot standby every engine's (only the lease holder drives
        # calls, so what nobody took over is dead, whichever engine opened it).
        self._sweep: str | None = None if sweep_every_instance else instance_id
        self.run_id = run_id
        self.service = AcdService(
            settings,
            metrics,
            start_callback=self._start_callback,
            callback_lookup=self._callback_history,
            callback_noted=self._callback_noted,
            callback_settled=self._callback_settled,
        )
        self.hub = AgentHub()
        self.index = CallIndex(self.service.agents)
        self.hub.subscribe(CallShown, self.index.hear)
        self._queued: set[str] = set()
        self._lines: set[str] = set()  # the dialer's live answers in queues (see _held_set)
        self._callback_calls: set[str] = set()  # callback attempts (a talk is handed over)
        self._shell: Shell | None = None
        # Before any other feature listens to the agents (the dialer does): a state change is
        # recorded and on the agent's screen before anything it sets off.
        self.presence = Presence(self.service, self.hub, self._record, instance_id, run_id)
        self.queues: QueueRunner | None = None
        self._callbacks: CallbackRunner | None = None
        self._features: FeatureCodes | None = None
        self.desk = DispositionDesk(self.service, self.index, self._record, self.in_queue)
        # By entry kind: who carries on a call of that kind an earlier engine left.
        self.adopters: dict[str, Adopter] = {}
        self.beat: EngineBeat | None = None

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
            max_silent_seconds=s.max_silent_seconds,
            talk_hooks=talk_hooks,
            adopt_within_seconds=s.adopt_within_seconds,
        )
        shell.tasks.start(self.queues.safeguard.run(), name="acd-safeguard")
        self.beat = EngineBeat(shell.telephony)
        shell.tasks.start(self.beat.run(), name="acd-engine-beat")
        self._callbacks = CallbackRunner(
            self.service,
            shell.telephony,
            shell.record,
            shell.metrics,
            self.hub,
            shell.instance_id,
            shell.asterisk_id,
            s.callback_trunk,
            handing_over=lambda: self.queues is not None and self.queues.handing_over,
        )
        self._features = FeatureCodes(
            self.service.agents,
            {a.id: a.pin for a in s.agents},
            shell.telephony,
            shell.record,
            shell.metrics,
        )
        await self.presence.restore(shell.pool)
        await self._restore_callbacks(shell.pool)

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

    # ---- callbacks that outlive the engine ----------------------------------------------------

    def _callback_noted(self, entry: Entry, not_before: datetime | None) -> None:
        self._record(
            CallbackPendingFact(
                entry.entry_id,
                entry.call_id,
                entry.queue,
                entry.priority,
                entry.enqueued_wall,
                self.service.wall_of(entry.joined_at),
                entry.caller_number,
                entry.caller_name,
                entry.did,
                entry.language,
                not_before,
                entry.callback_attempts,
                datetime.now(UTC),
            )
        )

    def _callback_settled(self, entry: Entry) -> None:
        self._record(CallbackSettledFact(entry.entry_id, datetime.now(UTC)))

    async def _restore_callbacks(self, pool: asyncpg.Pool) -> None:
        """Callbacks an earlier run left pending wait again at their place. One that may have
        been dialling when that run died waits ``CALLBACK_RESTART_HOLD_SECONDS`` first: its
        legs may still be up until the orphan sweep ends them, and a customer must not be
        called twice at once."""
        try:
            async with pool.acquire() as conn:
                rows = await store.pending_callbacks(conn)
        except DB_ERRORS as err:
            log.warning("acd.callbacks_not_restored", error=str(err))
            return
        now = datetime.now(UTC)
        hold = now + timedelta(seconds=CALLBACK_RESTART_HOLD_SECONDS)
        restored = 0
        for r in rows:
            if r["entry_id"] in self.service.entries:
                continue
            try:
                entry = self.service.restored_callback(
                    r["entry_id"],
                    r["callback_id"],
                    r["queue"],
                    r["priority"],
                    r["first_enqueued_at"],
                    r["enqueued_at"],
                    caller_number=r["caller_number"],
                    caller_name=r["caller_name"],
                    did=r["did"],
                    language=r["language"],
                    attempts=r["attempts"],
                )
            except UnknownQueue:
                # Its queue is no longer served here: it cannot be made, say so once.
                log.warning("acd.callback_dropped", entry=r["entry_id"], queue=r["queue"])
                self._record(
                    QueueLeftFact(
                        r["entry_id"], now, "callback_failed", 0.0, False, None, "queue_removed"
                    )
                )
                self._record(CallbackSettledFact(r["entry_id"], now))
                continue
            not_before = r["not_before"]
            self.service.hold_callback(entry, max(hold, not_before or hold))
            self.metrics.calls_adopted.labels(kind="callback").inc()
            restored += 1
        if restored:
            log.info("acd.callbacks_restored", callbacks=restored)

    # ---- calls ----------------------------------------------------------------------------

    async def feature_code(self, offer: CallOffered, inbox: CallInbox) -> None:
        assert self._features is not None
        await self._features.handle(offer, inbox)

    def takes_queue(self, queue: str) -> bool:
        return queue in self.service.queues

    async def queue_call(self, info: QueueCallInfo, inbox: CallInbox) -> None:
        await self.run(info, inbox)

    async def run(self, info: QueueCallInfo, inbox: CallInbox) -> str:
        """Run a call in queues to its end (``QueueRunner.run``), kept among the calls a
        graceful stop hands over."""
        assert self.queues is not None
        held = self._held_set(info)
        held.add(info.call_id)
        try:
            return await self.queues.run(info, inbox)
        finally:
            held.discard(info.call_id)

    async def resume(
        self, info: QueueCallInfo, entry: Entry, tag: PlaceTag, inbox: CallInbox
    ) -> str:
        """Carry on a call taken over (``QueueRunner.resume``), kept like ``run``'s."""
        assert self.queues is not None
        held = self._held_set(info)
        held.add(info.call_id)
        try:
            return await self.queues.resume(info, entry, tag, inbox)
        finally:
            held.discard(info.call_id)

    def _held_set(self, info: QueueCallInfo) -> set[str]:
        # A dialer's live answer is handed over with the rest, but it is not among the calls
        # the API may transfer: its attempt ends with its campaign's queue.
        return self._lines if info.kind in OWNED_KINDS else self._queued

    # ---- engines handing calls over -----------------------------------------------------

    def hand_over(self) -> int:
        """A graceful stop leaves waiting and talking callers to the next engine: each call
        that waits (now, or once a ringing agent's offer fails) or talks to an agent leaves
        this engine's books without an outcome, in its holding or mixing bridge with its place
        on its channel. Calls saying goodbye or leaving a message end as before. Returns the
        calls in queues or talks now (not all of them may be handed over)."""
        assert self.queues is not None
        assert self._shell is not None
        dispatcher = self._shell.dispatcher
        calls = self._queued | self._lines | self._callback_calls
        inboxes = [i for cid in calls if (i := dispatcher.inbox_of(cid)) is not None]
        self.queues.hand_over(inboxes)
        return len(inboxes)

    async def let_go(self) -> None:
        """The engine stops driving calls (after the hand-over or the drain): Asterisk's talk
        guard acts from now on (``asterisk/talk_guard.py``)."""
        if self.beat is not None:
            await self.beat.stop()

    def take_over(self, held: Sequence[HeldCall], first_connect: bool) -> set[str]:
        """Callers an earlier engine left waiting (``held``: from the channels of our app) go
        on waiting at their place: each entry is readmitted at once, all in one go and before
        routing runs, in the order they first queued; a task per call then carries it on.
        Callers it left talking to an agent talk on: the agent is on the call again and the
        agent's leg is the call's (``_adopt_talk``).

        Taken over: a readable place of a queue this engine serves, a kind that a caller is
        (not a dialer's line or a callback), the caller in that queue's holding bridge. Any
        other call is left out, and hung up as an orphan as before. At the first connect, the
        queue entries the previous run left open and nobody took over are closed as ``lost``.
        Returns the call ids taken over.
        """
        assert self._shell is not None
        dispatcher = self._shell.dispatcher
        places: list[tuple[HeldCall, PlaceTag]] = []
        for h in held:
            try:
                tag = parse_place(h.place)
            except PlaceUnreadable as err:
                log.warning("acd.not_taken_over", call_id=h.call_id, why=f"unreadable: {err}")
                continue
            if tag is None:
                continue
            why = self._not_adoptable(h, tag)
            if why is not None:
                log.warning("acd.not_taken_over", call_id=h.call_id, queue=tag.queue, why=why)
                continue
            places.append((h, tag))
        places.sort(key=lambda p: (p[1].first_wall, p[1].entry_id))
        taken: dict[str, str] = {}
        legs: set[str] = set()  # the agents' legs of the talks taken over: not orphans
        for h, tag in places:
            entry = self.service.adopted_entry(
                h.call_id,
                tag,
                caller_number=h.caller_number,
                caller_name=h.caller_name,
                did=h.did,
            )
            offer = CallOffered(
                h.call_id, h.channel_name, h.did, h.caller_number, h.caller_name, h.at
            )

            async def work(
                inbox: CallInbox, h: HeldCall = h, t: PlaceTag = tag, e: Entry = entry
            ) -> None:
                await self._carry_on(h, t, e, inbox)

            task: CallWork = work
            adopter = self.adopters.get(tag.kind)
            if adopter is not None:
                owned = adopter(h.call_id, entry, tag, work)
                if owned is None:
                    log.warning("acd.not_taken_over", call_id=h.call_id, why="not its owner's")
                    continue
                task = owned
            if not dispatcher.adopt(offer, task):
                continue
            entry.inbox = dispatcher.inbox_of(h.call_id)
            if tag.talking:
                self._adopt_talk(h, tag, entry)
                legs.add(h.leg_id or "")
            else:
                self.service.readmit(entry)
            (self._lines if tag.kind in OWNED_KINDS else self._queued).add(h.call_id)
            self.metrics.calls_adopted.labels(kind="talk" if tag.talking else tag.kind).inc()
            taken[h.call_id] = tag.entry_id
        if first_connect:
            self._record(
                OpenEntriesClosedFact(
                    self._sweep, sorted(taken.values()), datetime.now(UTC), "engine_restart"
                )
            )
        if held:
            log.info("acd.taken_over", calls=len(taken), talks=len(legs), found=len(held))
        return set(taken) | legs

    def take_over_callbacks(self, held: Sequence[HeldCall]) -> set[str]:
        """Callbacks' talks an earlier engine left (the ARI translator found each from its
        bridge and legs): the agent, known by the phone on the agent's leg, is on the call
        again at once (before routing runs), the legs' events reach a task that carries the
        talk on to its end, and the legs are not orphans. Returns the attempts and their legs.
        A talk whose agent is not configured here, or is on another call, is left to the
        orphan sweep."""
        assert self._shell is not None
        shell = self._shell
        taken: set[str] = set()
        for h in held:
            assert h.leg_id is not None
            assert h.customer_leg is not None
            agent = self.service.agents.by_device(h.leg_name.rsplit("-", 1)[0])
            # An agent logged out here was on no call of ours (a talk of an engine that kept
            # its agents elsewhere); one on another call cannot be on this one.
            if (
                agent is None
                or agent.state is AgentState.LOGGED_OUT
                or agent.call_id not in (None, h.call_id)
            ):
                log.warning("acd.not_taken_over", call_id=h.call_id, why="callback talk's agent")
                continue
            agent_id = agent.profile.agent_id

            async def work(inbox: CallInbox, h: HeldCall = h, agent_id: str = agent_id) -> None:
                self._callback_calls.add(h.call_id)
                try:
                    await self._carry_on_callback(h, agent_id, inbox)
                finally:
                    self._callback_calls.discard(h.call_id)

            if not shell.dispatcher.start_owned(h.call_id, work, direction="callback"):
                continue
            shell.telephony.adopt_leg(h.leg_id, h.call_id)
            shell.telephony.adopt_leg(h.customer_leg, h.call_id)
            self.service.agents.adopt_call(agent_id, h.call_id, h.at)
            self.metrics.calls_adopted.labels(kind="talk").inc()
            taken |= {h.call_id, h.leg_id, h.customer_leg}
        return taken

    async def _carry_on_callback(self, h: HeldCall, agent_id: str, inbox: CallInbox) -> None:
        """The task of a callback's talk taken over: when the agent answered and from which
        queue (PostgreSQL; a queue unknown here leaves the agent no wrap-up), then the talk."""
        assert self._shell is not None
        assert self._callbacks is not None
        assert h.leg_id is not None
        assert h.customer_leg is not None
        tel = self._shell.telephony
        if not h.customer_bridged:
            # The customer answered as the last engine died: put through as it would have.
            try:
                await tel.join_bridge(h.bridge_id, [h.customer_leg])
            except TelephonyError as err:
                log.warning("acd.callback_join_failed", call_id=h.call_id, error=str(err))
        since, queue, entry_id = h.at, None, None
        try:
            async with asyncio.timeout(CONTEXT_LOOKUP_SECONDS * 5):
                async with self._shell.pool.acquire() as conn:
                    found = await store.callback_talk(conn, h.leg_id)
        except DB_ERRORS as err:
            found = None
            log.info("acd.callback_talk_context_unavailable", error=type(err).__name__)
        if found is not None:
            since, queue, entry_id = found[0] or since, found[1], found[2]
        key = entry_id or ""
        entry = self.service.entries.get(key) or self.service.held.get(key)
        if entry is not None:
            # Its pending row was put back at the start (the last engine died before it
            # closed the entry): it is connected, and must not be called again.
            waited = self.service.leave(entry, "callback_connected")
            self._record(
                QueueLeftFact(
                    entry.entry_id,
                    datetime.now(UTC),
                    "callback_connected",
                    waited,
                    False,
                    agent_id,
                    "taken over in its talk",
                )
            )
        await self._callbacks.resume_talk(
            h.call_id, agent_id, h.leg_id, h.customer_leg, since, queue, inbox
        )

    def _adopt_talk(self, h: HeldCall, tag: PlaceTag, entry: Entry) -> None:
        """The agent is on this call again (from when the talk began), and its leg's events
        reach the call's task. The entry is not readmitted: it was answered."""
        assert self._shell is not None
        assert tag.talk_agent is not None
        assert tag.talk_leg is not None
        assert tag.talk_wall is not None
        entry.agent_id = tag.talk_agent
        self._shell.telephony.adopt_leg(tag.talk_leg, h.call_id)
        self.service.agents.adopt_call(tag.talk_agent, h.call_id, tag.talk_wall)
        log.info("acd.talk_taken_over", call_id=h.call_id, agent=tag.talk_agent)

    def _not_adoptable(self, h: HeldCall, tag: PlaceTag) -> str | None:
        if tag.queue not in self.service.queues:
            return "queue not served here"
        if tag.kind not in ADOPTABLE_KINDS:
            return f"kind {tag.kind}"
        if tag.kind in OWNED_KINDS and tag.kind not in self.adopters:
            return f"kind {tag.kind}: no feature here carries it on"
        if tag.talking:
            agent = self.service.agents.find(tag.talk_agent or "")
            if h.bridge_id != bridge_for_call(h.call_id) or h.leg_id != tag.talk_leg:
                return "not in its talk's bridge with its agent's leg"
            if agent is None:
                return "its agent is not configured here"
            if agent.call_id is not None and agent.call_id != h.call_id:
                return "its agent is on another call"
        elif h.bridge_id != bridge_for_queue(tag.queue):
            return "not in its queue's holding bridge"
        if not tag.entry_id.startswith(f"{h.call_id}-q"):
            return "the place names another call's entry"
        if tag.entry_id in self.service.entries:
            return "the entry waits already"
        return None

    async def _carry_on(self, h: HeldCall, tag: PlaceTag, entry: Entry, inbox: CallInbox) -> None:
        """The task of a call taken over: who the caller is, then the queue call goes on."""
        assert self.queues is not None
        assert self._shell is not None
        self._queued.add(h.call_id)
        try:
            number, name, did = h.caller_number, h.caller_name, h.did
            attributes: dict[str, str] | None = None
            try:
                async with asyncio.timeout(CONTEXT_LOOKUP_SECONDS):
                    async with self._shell.pool.acquire() as conn:
                        found = await store.caller_context(conn, h.call_id)
            except DB_ERRORS as err:
                found = None
                log.info("acd.caller_context_unavailable", error=type(err).__name__)
            if found is not None:
                number, name, did = found[0] or number, found[1] or name, found[2] or did
                attributes = found[3]
            if attributes is None:
                # A hotline's queue call: what such a call brings (engine/inbound.py).
                attributes = {"caller_number": number, "did": did}
            entry.caller_number, entry.caller_name, entry.did = number, name, did
            entry.attributes = dict(attributes)
            info = QueueCallInfo(
                h.call_id,
                tag.queue,
                number,
                name,
                did,
                tag.language,
                attributes,
                answered=True,
                kind=tag.kind,
                pinned_agent=tag.pinned_agent,
            )
            await self.queues.resume(info, entry, tag, inbox)
        finally:
            self._queued.discard(h.call_id)

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
            self._callback_calls.add(attempt)
            try:
                await cb.run(attempt, entry, offer, inbox)
            finally:
                self._callback_calls.discard(attempt)

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
