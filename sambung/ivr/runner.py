"""Runs IVR calls: one task per call steps the pure machine (``ivr/menu.py``) and does what it
decides. Timers and CRM lookups post their results back into the call's own inbox, so the
machine sees one ordered stream of events and the task never blocks on either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from yarl import URL

from sambung.engine.calls import CallInbox
from sambung.engine.errors import CallGone, TelephonyError
from sambung.engine.events import (
    CallEnded,
    CallerHungUp,
    CallOffered,
    DigitPressed,
    PromptStarted,
)
from sambung.engine.facts import (
    CallAnsweredFact,
    CallEndedFact,
    Fact,
    IvrLiveStateFact,
    IvrSessionEndedFact,
    IvrSessionStartedFact,
    IvrStepFact,
)
from sambung.engine.metrics import Metrics
from sambung.engine.ports import IvrTelephony
from sambung.ivr import menu
from sambung.ivr.model import EnvHeader, Flow, InputNode
from sambung.ivr.resume import LiveState, Resumption

log = structlog.get_logger(__name__)

_HANGUP_CONFIRM_SECONDS = 5.0
# Reasons the engine gives when it, not the flow or the caller, ended the session.
_LOST = {"asterisk_restart", "lost_while_disconnected", "shutdown", "engine_restart"}
_FAILED = {"engine_error", "flow_loop", "flow_error", "timeout"}


def outcome_of(end_reason: str) -> str:
    """The IVR's view of how a session ended, for containment figures."""
    if end_reason.startswith("transfer:"):
        return "transferred"
    if end_reason == "caller_abandoned_ivr":
        return "abandoned"
    if end_reason in _LOST:
        return "lost"
    if end_reason in _FAILED:
        return "failed"
    return "completed"


class IvrRunner:
    def __init__(
        self,
        telephony: IvrTelephony,
        record: Callable[[Fact], None],
        http: aiohttp.ClientSession,
        metrics: Metrics,
        max_silent_seconds: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        takes_queue: Callable[[str], bool] = lambda _queue: False,
        safeguard_seconds: float = 0.0,
    ) -> None:
        self._tel = telephony
        self._record = record
        self._http = http
        self._m = metrics
        self._max_silent = max_silent_seconds
        self._now = clock
        # Whether a queue can take a transferred call now (the ACD knows it); if not, the flow's
        # transfer prompts were the last thing the caller hears.
        self._takes_queue = takes_queue
        # Asterisk's own bound on a caller nobody drives (see _guard); 0: none.
        self._guard_bound = safeguard_seconds

    async def handle(self, offer: CallOffered, inbox: CallInbox, flow: Flow) -> Handoff | None:
        """Run the flow; a transfer to a queue returns the hand-off (the call stays up)."""
        call_id = offer.call_id
        self._record(
            IvrSessionStartedFact(call_id, flow.name, flow.version, offer.at, flow.default_language)
        )
        self._m.ivr_calls.labels(flow=flow.name).inc()
        log.info("ivr.call_offered", flow=flow.name, version=flow.version[:12], did=offer.did)
        call = _IvrCall(self, offer, inbox, flow)
        await call.run()
        return call.handoff

    async def resume(
        self, offer: CallOffered, inbox: CallInbox, flow: Flow, at: Resumption
    ) -> Handoff | None:
        """Carry on a call an earlier engine left in ``flow`` (its session row is open): at
        the node and with what ``at`` says. Returns as ``handle`` does."""
        log.info("ivr.resumed", flow=flow.name, node=at.node_id, generation=at.generation)
        call = _IvrCall(self, offer, inbox, flow, at)
        await call.run()
        return call.handoff


@dataclass(frozen=True, slots=True)
class HandOverAsked:
    """The engine is stopping and leaves callers in flows to the next one."""


@dataclass(frozen=True, slots=True)
class Handoff:
    """The IVR gives the call to a queue, with what it learnt (inputs, lookups, language)."""

    queue: str
    attributes: dict[str, str]
    language: str


class _IvrCall:
    """One call's life in the IVR; owned by its call task only."""

    def __init__(
        self,
        r: IvrRunner,
        offer: CallOffered,
        inbox: CallInbox,
        flow: Flow,
        resumption: Resumption | None = None,
    ) -> None:
        self.r = r
        self.resumption = resumption
        # What the session's row last said (node, language, attributes): written again only
        # when one of them changes.
        self.checkpoint: tuple[str, str, object] | None = None
        self.handed_over = False
        self.guard: asyncio.Task[None] | None = None
        # Set while no prompt of ours plays: when the safeguard may be refreshed (_guard).
        self.quiet = asyncio.Event()
        self.quiet.set()
        # What sensitive inputs collect: never stored, never logged (the flow is the call's).
        self.secret = frozenset(
            node.store_as
            for _, node in flow.nodes
            if isinstance(node, InputNode) and node.sensitive
        )
        self.offer = offer
        self.inbox = inbox
        self.flow = flow
        self.call_id = offer.call_id
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.lookups: dict[str, asyncio.Task[None]] = {}
        self.state: menu.IvrState | None = None
        self.ended: CallEnded | CallerHungUp | None = None
        self.last_digit_at: datetime | None = None
        self.handoff: Handoff | None = None

    async def run(self) -> None:
        r = self.r
        try:
            if self.resumption is None:
                if not await self._answer():
                    return
                await self._start_guard()
                state, commands = menu.start(self.call_id, self.flow, r._now(), self._caller())
                await self._apply(state, commands, "start")
            else:
                at = self.resumption
                # The last engine's prompts first: a variable set behind one would wait for it.
                await self._stop_earlier(at)
                await self._start_guard()
                state, commands = menu.resume(
                    self.call_id,
                    self.flow,
                    r._now(),
                    at.node_id,
                    at.language,
                    {**self._caller(), **at.attributes},
                    at.seq,
                    at.withheld,
                    at.generation,
                )
                await self._apply(state, commands, "resume")
            while (
                self.state is not None
                and self.state.phase is not menu.Phase.ENDED
                and self.handoff is None
                and not self.handed_over
            ):
                ending = self.state.phase is menu.Phase.ENDING
                item = await self.inbox.next_any(
                    _HANGUP_CONFIRM_SECONDS if ending else r._max_silent
                )
                if item is None:
                    if ending:
                        break  # our hang-up was not confirmed; close the call anyway
                    log.warning("ivr.silent_call")
                    await self._hangup("timeout")
                    break
                await self._feed(item)
        finally:
            if self.guard is not None:
                self.guard.cancel()
                await asyncio.gather(self.guard, return_exceptions=True)
            for h in self.timers.values():
                h.cancel()
            for t in self.lookups.values():
                t.cancel()
            if self.lookups:
                await asyncio.gather(*self.lookups.values(), return_exceptions=True)
            final = self.state
            reason = final.end_reason if final is not None and final.end_reason else None
            if self.handed_over:
                # The caller stays in Asterisk, its session open with where it is; the next
                # engine resumes it and closes the session. Nothing of the call is closed
                # here. The safeguard is refreshed one last time where that is not held up by
                # a prompt: the next engine then has the whole bound.
                self.inbox.hand_over()
                if final is not None and not final.playing:
                    await self._safeguard(r._guard_bound)
                log.info("ivr.handed_over", node=final.node_id if final else "")
            elif self.handoff is not None:
                await self._close(reason or f"transfer:{self.handoff.queue}", final, False)
            else:
                if self.ended is None:
                    # The task is ending without Asterisk saying the call is over (shutdown
                    # past its drain time, a crash, an unconfirmed hang-up): make sure it is.
                    with contextlib.suppress(TelephonyError):
                        await r._tel.hangup(self.call_id)
                await self._close(reason or "shutdown", final)

    async def _start_guard(self) -> None:
        """Set the safeguard now, while nothing plays, then keep it refreshed."""
        if self.r._guard_bound > 0:
            await self._safeguard(self.r._guard_bound)
            self.guard = asyncio.get_running_loop().create_task(
                self._guard(), name=f"ivr-guard-{self.call_id}"
            )

    async def _guard(self) -> None:
        """Asterisk's safeguard (``TIMEOUT(absolute)``, the ACD's bound): refreshed every third
        of it while this engine runs the call, so a caller whose engine died and none came
        back is released with the engine-down message rather than left in silence.

        A variable set while a prompt plays waits in Asterisk for the prompt to end (see
        ``ivr/resume.py``), holding an HTTP connection all that time: a refresh waits for a
        moment with no prompt of ours playing, which a bound of a third leaves plenty of."""
        bound = self.r._guard_bound
        while True:
            await asyncio.sleep(bound / 3)
            await self.quiet.wait()
            await self._safeguard(bound)

    async def _safeguard(self, seconds: float) -> None:
        if self.r._guard_bound <= 0:
            return
        try:
            await self.r._tel.set_safeguard(self.call_id, seconds)
        except TelephonyError as err:  # CallGone included: the call's end comes as an event
            log.debug("ivr.safeguard_failed", error=type(err).__name__)

    async def _answer(self) -> bool:
        r = self.r
        try:
            await r._tel.answer(self.call_id)
        except CallGone:
            log.info("ivr.gone_before_answer")
            await self._close("caller_abandoned_ivr", None)
            return False
        except TelephonyError as err:
            log.warning("ivr.answer_failed", error=str(err))
            await self._close("engine_error", None)
            return False
        r._record(CallAnsweredFact(self.call_id, r._now()))
        return True

    async def _stop_earlier(self, at: Resumption) -> None:
        """Stop what the engine before may have left playing (its prompt ids are known by
        their form): the resumed node's prompt then plays at once, not after it."""
        for pid in at.earlier:
            try:
                await self.r._tel.stop_prompt(pid)
            except CallGone:
                return
            except TelephonyError as err:
                log.warning("ivr.stop_earlier_failed", error=str(err))
                return

    def _caller(self) -> dict[str, str]:
        return {
            "caller_number": self.offer.caller_number,
            "caller_name": self.offer.caller_name,
            "did": self.offer.did,
        }

    async def _feed(self, item: object) -> None:
        match item:
            case HandOverAsked():
                if self.state is not None and self.state.phase is not menu.Phase.ENDING:
                    self.handed_over = True
                return
            case CallEnded() | CallerHungUp():
                if self.ended is None or isinstance(item, CallEnded):
                    self.ended = item
            case DigitPressed(at=at):
                self.last_digit_at = at
            case PromptStarted(at=at) if self.last_digit_at is not None:
                lag = (at - self.last_digit_at).total_seconds()
                if lag >= 0:
                    self.r._m.ivr_digit_to_prompt.observe(lag)
                    log.info("ivr.digit_to_prompt", ms=round(lag * 1000, 1))
                self.last_digit_at = None
            case menu.LookupDone(node_id=nid):
                self.lookups.pop(nid, None)
        # CallAnswered is acted on from the REST reply and never reaches the machine.
        if not isinstance(item, menu.IVR_EVENT_TYPES):
            return
        assert self.state is not None
        state, commands = menu.step(self.state, item)
        await self._apply(state, commands, type(item).__name__)

    async def _apply(self, state: menu.IvrState, commands: list[menu.Command], why: str) -> None:
        old = self.state
        self.state = state
        if state.playing:
            self.quiet.clear()
        else:
            self.quiet.set()
        if old is None or old.node_id != state.node_id or old.phase is not state.phase:
            log.info(
                f"transition: {old.node_id if old else '-'}/{old.phase.value if old else '-'} "
                f"-> {why} -> {state.node_id}/{state.phase.value}",
                detail=state.last_transition,
            )
        for cmd in commands:
            await self._execute(cmd)
        self._store(state)

    def _store(self, state: menu.IvrState) -> None:
        """What the flow knows at the node the caller reached, with the session, for an
        engine that may have to resume the call (``ivr/resume.py``): written again only when
        the node, the language or the attributes change."""
        if state.phase in (menu.Phase.ENDING, menu.Phase.ENDED) or self.handoff is not None:
            return
        c = self.checkpoint
        if c is not None and c[:2] == (state.node_id, state.language) and c[2] is state.attributes:
            return
        self.checkpoint = (state.node_id, state.language, state.attributes)
        live = LiveState(
            state.node_id,
            state.path_seq,
            state.language,
            self._storable(state),
            tuple(sorted(self.secret.intersection(state.attributes))),
            state.generation,
        )
        self.r._record(IvrLiveStateFact(self.call_id, state.path_seq, live.to_json()))

    async def _execute(self, cmd: menu.Command) -> None:
        r = self.r
        flow = self.flow.name
        try:
            match cmd:
                case menu.Play(prompt_id=pid, media=media, language=lang):
                    await r._tel.play(self.call_id, pid, media, language=lang)
                case menu.StopPrompts(prompt_ids=ids):
                    for pid in ids:
                        await r._tel.stop_prompt(pid)
                case menu.StartTimer(timer_id=tid, seconds=secs):
                    loop = asyncio.get_running_loop()
                    self.timers[tid] = loop.call_later(secs, self._fire, tid)
                case menu.CancelTimer(timer_id=tid):
                    handle = self.timers.pop(tid, None)
                    if handle is not None:
                        handle.cancel()
                case menu.Lookup(
                    node_id=nid, url=url, timeout_seconds=tmo, attempts=n, headers=headers
                ):
                    self.lookups[nid] = asyncio.get_running_loop().create_task(
                        self._lookup(nid, url, tmo, n, headers),
                        name=f"lookup-{self.call_id}-{nid}",
                    )
                case menu.CheckPrompt(prompt_id=pid):
                    playing = await r._tel.prompt_active(pid)
                    self.inbox.post_local(menu.PromptCheck(pid, playing, r._now()))
                case menu.RecordStep(seq=seq, node_id=node, kind=kind, choice=choice, at=at):
                    r._record(IvrStepFact(self.call_id, seq, at, node, kind, choice))
                    if kind == "enter":
                        r._m.ivr_node_visits.labels(flow=flow, node=node).inc()
                    elif kind in ("option", "invalid", "no_input"):
                        label = choice if kind == "option" and choice else kind
                        r._m.ivr_choices.labels(flow=flow, node=node, choice=label).inc()
                case menu.SetLanguage(language=lang):
                    log.info("ivr.language", language=lang)
                case menu.Transfer(queue=queue, attributes=attrs):
                    if self.ended is None and r._takes_queue(queue):
                        lang = self.state.language if self.state is not None else ""
                        self.handoff = Handoff(queue, dict(attrs), lang)
                        log.info("ivr.transfer", queue=queue)
                        # The queue keeps its own safeguard (off while the caller talks): the
                        # flow's is cleared, or its timeout would cut the talk. No prompt
                        # plays now (a transfer waits for its own), so this is not held up.
                        if self.guard is not None:
                            self.guard.cancel()
                        await r._tel.set_safeguard(self.call_id, 0)
                    else:
                        # No ACD queue by that name: the flow has told the caller; release.
                        log.info("ivr.transfer_refused", queue=queue)
                        await r._tel.hangup(self.call_id)
                case menu.Hangup():
                    await r._tel.hangup(self.call_id)
        except CallGone:
            log.debug("ivr.command_on_gone_call", command=type(cmd).__name__)
        except TelephonyError as err:
            log.warning("ivr.command_failed", command=type(cmd).__name__, error=str(err))
            if not isinstance(cmd, menu.Hangup | menu.Transfer | menu.StopPrompts):
                await self._hangup("engine_error")

    def _fire(self, timer_id: str) -> None:
        # A loop callback, not a task: it only posts the event; the call task acts on it.
        self.timers.pop(timer_id, None)
        self.inbox.post_local(menu.TimerFired(timer_id, self.r._now()))

    async def _hangup(self, reason: str) -> None:
        if self.state is not None and not self.state.end_reason:
            self.state = menu.with_end_reason(self.state, reason)
        try:
            await self.r._tel.hangup(self.call_id)
        except TelephonyError as err:
            log.warning("ivr.hangup_failed", error=str(err))

    async def _lookup(
        self,
        node_id: str,
        url: str,
        timeout: float,
        attempts: int,
        headers: tuple[EnvHeader, ...] = (),
    ) -> None:
        r = self.r
        data: dict[str, str] = {}
        ok = False
        # encoded=True: the URL is sent exactly as ivr/urls.py built and checked it; parsing
        # it again would normalise its path (dot segments) and requote it.
        target = URL(url, encoded=True)
        sent = {h.name: h.value for h in headers}
        for attempt in range(1, max(1, attempts) + 1):
            try:
                async with r._http.get(
                    target, headers=sent, timeout=aiohttp.ClientTimeout(total=timeout)
                ) as resp:
                    if resp.status == 200:
                        body: Any = await resp.json(content_type=None)
                        if isinstance(body, dict):
                            data = {
                                str(k): str(v)
                                for k, v in body.items()
                                if isinstance(v, str | int | float | bool)
                            }
                            ok = True
                            break
                        log.warning("ivr.lookup_not_an_object", node=node_id)
                        break
                    if resp.status == 404:
                        log.info("ivr.lookup_not_found", node=node_id)
                        break  # an unknown account is an answer, not a fault: no retry
                    log.warning(
                        "ivr.lookup_http_error", node=node_id, status=resp.status, attempt=attempt
                    )
            except (aiohttp.ClientError, TimeoutError, ValueError) as err:
                # The error's type only: aiohttp's errors carry the URL, which holds caller data.
                log.warning(
                    "ivr.lookup_failed", node=node_id, error=type(err).__name__, attempt=attempt
                )
        r._m.ivr_lookups.labels(flow=self.flow.name, result="ok" if ok else "failed").inc()
        self.inbox.post_local(menu.LookupDone(node_id, ok, data, r._now()))

    def _storable(self, state: menu.IvrState | None) -> dict[str, str]:
        """The attributes kept with the session: all but what sensitive inputs collected."""
        if state is None:
            return {}
        return {k: v for k, v in state.attributes.items() if k not in self.secret}

    async def _close(
        self, reason: str, state: menu.IvrState | None, call_over: bool = True
    ) -> None:
        r = self.r
        now = r._now()
        ended = self.ended
        outcome = outcome_of(reason)
        started = self.offer.at
        r._m.ivr_outcomes.labels(flow=self.flow.name, outcome=outcome).inc()
        r._m.ivr_time.labels(flow=self.flow.name).observe(max(0.0, (now - started).total_seconds()))
        r._record(
            IvrSessionEndedFact(
                self.call_id,
                now,
                outcome,
                reason,
                state.node_id if state else "",
                state.language if state else "",
                json.dumps(self._storable(state), ensure_ascii=False),
            )
        )
        if not call_over:
            return  # the call goes on in a queue, which closes its row
        synthetic = isinstance(ended, CallEnded) and ended.reason is not None
        cause = None if ended is None or synthetic else ended.cause
        text = ended.cause_text if isinstance(ended, CallEnded) else None
        sip = ended.sip_code if isinstance(ended, CallEnded) else None
        r._record(CallEndedFact(self.call_id, ended.at if ended else now, reason, cause, text, sip))
        log.info("ivr.ended", reason=reason, outcome=outcome)
