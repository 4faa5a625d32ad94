"""Pure state machine of an IVR call: walks an ``ivr.model.Flow`` one event at a time.

``start(call_id, flow, at, attributes)`` enters the flow; ``step(state, event)`` decides what
an event means. Both return ``(state, commands)``: no I/O, no clock reads (every event carries
its time, aware UTC; a naive one is taken as UTC), no async. The call task (``ivr/runner.py``)
feeds events and executes the commands; every decision is here, so executing a command is one
call to the telephony port, a timer, an HTTP request or a fact. ``state.last_transition`` says
in words what the last step did, for the transition log line.

Rules worth knowing
-------------------
Prompts
    A node's prompts are one ``Play`` (one Asterisk playback with several media); a retry queues
    the retry message and the node's prompts as two. ``IvrState.playing`` holds every prompt id
    playing or queued, in order. Asterisk plays a channel's queue in order, so a prompt
    finishing means every prompt queued before it is done as well (their own events may have
    been lost). A failed prompt (a missing file) counts as finished: the flow never stalls on
    one. Events for prompts not in ``playing`` (stopped by a barge-in, or from an earlier node)
    are stale and change nothing.
Barge-in and type-ahead
    Menus and inputs always take digits while their prompts play: the prompts stop and the
    digit counts at once. A ``PlayNode`` with ``barge_in`` (and a ``SayNode``, which has no
    such switch) stops its prompts at the first digit and keeps the digit as type-ahead for the
    next node; entering such a node with type-ahead pending skips it (the digit would have
    stopped it anyway). Digits pressed during a lookup are kept as type-ahead too; digits
    during a ``PlayNode`` without barge-in, a transfer or a hang-up message are dropped. A menu
    takes one type-ahead digit as its key without playing its prompts; an input takes all of
    them. Type-ahead is cleared on every retry (the caller is lost: start afresh).
Menus
    The node's own options win over the repeat key and the flow's zero-out key (the loader
    should reject such clashes). The no-input timer starts when the prompts finish.
Inputs
    The first-digit timer starts when the prompts finish; after each digit the inter-digit
    timer runs, and when it fires the digits so far are the input (validated like a
    terminated one). The terminator ends the input and is not stored; reaching ``max_length``
    ends it too. ``*`` (unless it is the terminator) clears what was entered and restarts the
    collection with the first-digit timer, without replaying the prompts. The digits are
    stored in ``RecordStep(kind="input", choice=<digits>)`` as entered (and in ``invalid``
    records when they fail): account numbers are what the path analysis needs, and the
    engine blanks them after ``[ivr] digits_retention_days``. A ``sensitive`` input records
    ``choice=None`` instead, in both. Never collect secrets (PINs) with an ``InputNode``.
Attempts
    ``attempt`` is the attempt in progress (1 on entering a node). An invalid key or input, or
    no input, uses it up; the retry prompts and the node's prompts play again. When the last
    of ``retry.max_attempts`` fails: ``RecordStep(kind="max_attempts")`` and ``on_failure``
    (a hang-up with reason ``max_attempts`` when the flow gives no ``on_failure``).
Chains
    Conditions, sets and skipped nodes continue at once, so one event may pass several nodes.
    More than ``MAX_CHAIN`` nodes entered without waiting for the caller ends the call with
    reason ``flow_loop``.
Language
    ``attributes["language"]`` always equals ``state.language``. Setting ``language`` (a set
    node, or a lookup result with no prefix) to one of ``flow.languages`` changes both and
    emits ``SetLanguage``; any other value is ignored (and said in ``last_transition``).
The end
    The caller hanging up (``CallerHungUp`` or ``CallEnded``) ends the machine: the reason is
    ``caller_abandoned_ivr`` unless the flow had already decided (a hang-up node's message was
    playing, or the flow's hang-up or transfer was sent). A ``CallEnded`` with ``reason`` (the
    engine concluded the call is gone: ``asterisk_restart``...) keeps that reason unless the
    flow had already sent its hang-up or transfer. After ``ENDED`` nothing changes.

Step records (``RecordStep.kind``): ``enter``, ``option``, ``repeat``, ``zero_out``,
``invalid`` (choice: the key or the digits), ``no_input``, ``input_cleared``, ``input``,
``max_attempts`` (choice: invalid/no_input), ``branch`` (choice: the condition that held, or
``otherwise``), ``lookup_ok``, ``lookup_failed`` (choice: ``<reason>:<attr>`` when the URL
was not built: ``missing``, ``dot_segment``, ``empty_segment``, see ``ivr/urls.py``), ``say``
(choice ``missing`` or ``invalid``: the value was not said),
``barge_in``, ``skipped`` (choice ``type_ahead``), ``transfer`` (choice: the queue),
``abandoned``, ``lost`` (choice: the engine's reason), ``flow_loop``, ``flow_error``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sambung.engine.events import (
    CallEnded,
    CallerHungUp,
    CallResynced,
    DigitPressed,
    PromptFinished,
)
from sambung.ivr.errors import LookupUrlRefused
from sambung.ivr.model import (
    AttrEquals,
    AttrIn,
    AttrPresent,
    Calendar,
    Condition,
    ConditionNode,
    EnvHeader,
    Flow,
    HangupNode,
    InBusinessHours,
    InputNode,
    IsHoliday,
    LookupNode,
    MenuNode,
    Node,
    PlayNode,
    SayNode,
    SetNode,
    TransferNode,
)
from sambung.ivr.speech import say_media
from sambung.ivr.urls import render_url

MAX_CHAIN = 50  # nodes entered in one step before the flow is declared a loop
MAX_TYPE_AHEAD = 32  # digits kept ahead; more are dropped


class Phase(enum.Enum):
    PLAYING = "playing"  # the node's prompts play (or queue)
    WAITING_DIGITS = "waiting_digits"  # a menu or input waits for a key, its timer running
    LOOKING_UP = "looking_up"  # a Lookup was sent; LookupDone is awaited
    ENDING = "ending"  # the flow sent Hangup or Transfer; the call's end is awaited
    ENDED = "ended"  # nothing more happens


# ---- events made for the machine (the rest come from engine.events) ------------------------


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LookupDone:
    """The answer to ``Lookup``, after all its attempts: ``ok`` with the object's fields."""

    node_id: str
    ok: bool
    data: Mapping[str, str]
    at: datetime


@dataclass(frozen=True, slots=True)
class PromptCheck:
    """The answer to ``CheckPrompt``: whether the prompt is still queued or playing."""

    prompt_id: str
    playing: bool
    at: datetime


IvrEvent = (
    DigitPressed
    | PromptFinished
    | CallerHungUp
    | CallEnded
    | CallResynced
    | TimerFired
    | LookupDone
    | PromptCheck
)
# For isinstance() in the call task: what it should hand to step().
IVR_EVENT_TYPES = (
    DigitPressed,
    PromptFinished,
    CallerHungUp,
    CallEnded,
    CallResynced,
    TimerFired,
    LookupDone,
    PromptCheck,
)


# ---- commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Play:
    """Queue ``media`` as one prompt in ``language``; ends with PromptFinished(prompt_id)."""

    prompt_id: str
    media: tuple[str, ...]
    language: str


@dataclass(frozen=True, slots=True)
class StopPrompts:
    """Stop these prompts (playing or queued); their PromptFinished events are then stale."""

    prompt_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Send TimerFired(timer_id) after ``seconds``."""

    timer_id: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer_id: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """GET ``url`` (already rendered and encoded: send it as it is) with ``headers``, up to
    ``attempts`` times in all, each within ``timeout_seconds``; then send
    LookupDone(node_id, ...)."""

    node_id: str
    url: str
    timeout_seconds: float
    attempts: int
    headers: tuple[EnvHeader, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckPrompt:
    """Ask whether the prompt still plays; answer with PromptCheck."""

    prompt_id: str


@dataclass(frozen=True, slots=True)
class RecordStep:
    """A fact of the call's path: ``seq`` is unique per call and increasing."""

    seq: int
    node_id: str
    kind: str
    choice: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the call to ``queue`` with the call's attributes; what that does is the service's."""

    queue: str
    attributes: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: str


@dataclass(frozen=True, slots=True)
class SetLanguage:
    """The caller's language changed (the channel's language; prompts look up with it)."""

    language: str


Command = (
    Play
    | StopPrompts
    | StartTimer
    | CancelTimer
    | Lookup
    | CheckPrompt
    | RecordStep
    | Transfer
    | Hangup
    | SetLanguage
)


# ---- state ----------------------------------------------------------------------------------


def _frozen(d: Mapping[str, str]) -> Mapping[str, str]:
    # A read-only view over a private copy: nobody else holds the dict, so it never changes.
    return MappingProxyType(dict(d))


@dataclass(frozen=True, slots=True)
class IvrState:
    call_id: str
    flow: Flow
    node_id: str
    language: str
    attributes: Mapping[str, str] = field(default_factory=lambda: _frozen({}), hash=False)
    phase: Phase = Phase.PLAYING
    digits: str = ""  # collected by the current input node
    attempt: int = 1  # the attempt in progress at the current menu or input
    type_ahead: str = ""  # digits pressed ahead, for the next menu or input
    playing: tuple[str, ...] = ()  # prompt ids playing or queued, in queue order
    timer_id: str | None = None  # the one active timer
    timers_started: int = 0  # for timer ids
    prompts_in_seq: int = 0  # prompts started since the last step record, for prompt ids
    menu_depth: int = 0  # menus visited
    end_reason: str | None = None
    path_seq: int = 0  # step records so far (the last RecordStep's seq)
    last_transition: str = ""  # what the last step did, in words, for the log
    # How many engines resumed the call so far: in prompt ids, so a resumed call's prompts
    # never take the id of one an earlier engine left playing.
    generation: int = 0

    @property
    def node(self) -> Node:
        return self.flow.node(self.node_id)


def with_end_reason(state: IvrState, reason: str) -> IvrState:
    """The state with ``end_reason`` set (the call task ending the call on its own)."""
    return replace(state, end_reason=reason)


# ---- the machine ----------------------------------------------------------------------------


def start(
    call_id: str, flow: Flow, at: datetime, attributes: Mapping[str, str] | None = None
) -> tuple[IvrState, list[Command]]:
    """Enter ``flow.start``. ``attributes`` are the call's first ones (caller_number, did...);
    a ``language`` among them that the flow offers is the starting language."""
    attrs = dict(attributes or {})
    language = attrs.get("language", "")
    if language not in flow.languages:
        language = flow.default_language
    attrs["language"] = language
    state = IvrState(call_id, flow, flow.start, language, _frozen(attrs))
    tx = _Step(state, at)
    tx.emit(SetLanguage(language))
    tx.note(f"start in {language}")
    tx.go(flow.start)
    return tx.finish()


def resume(
    call_id: str,
    flow: Flow,
    at: datetime,
    node_id: str,
    language: str,
    attributes: Mapping[str, str],
    seq: int,
    withheld: tuple[str, ...] = (),
    generation: int = 1,
) -> tuple[IvrState, list[Command]]:
    """Carry on a call an earlier engine left in ``flow`` at ``node_id``: the node is entered
    again (its prompt plays again) with what the session knew there. Step records go on after
    ``seq``.

    A sensitive input's value is never kept (``withheld`` names what such inputs had
    collected): the caller is asked for it again at the first input node that collects one,
    rather than the flow going on without it. A node the flow no longer has (it was reloaded
    with other nodes) sends the caller to the flow's start, in the same language.
    """
    attrs = dict(attributes)
    if language not in flow.languages:
        language = flow.default_language
    attrs["language"] = language
    for key in withheld:
        attrs.pop(key, None)
    state = IvrState(
        call_id,
        flow,
        node_id,
        language,
        _frozen(attrs),
        path_seq=max(0, seq),
        generation=generation,
    )
    tx = _Step(state, at)
    tx.emit(SetLanguage(language))
    target = node_id
    again = _collector_of(flow, withheld)
    if again is not None:
        target = again
        tx.note(f"resumed at {node_id}; {again} asks again for what it collected")
    elif node_id not in dict(flow.nodes):
        target = flow.start
        tx.note(f"resumed; {node_id} is not in the flow any more: from the start")
    else:
        tx.note(f"resumed at {node_id} in {language}")
    tx.record("resumed", None, target)
    tx.go(target)
    return tx.finish()


def _collector_of(flow: Flow, withheld: tuple[str, ...]) -> str | None:
    """The first node, in the flow's order, whose sensitive input stores one of ``withheld``."""
    wanted = set(withheld)
    for nid, node in flow.nodes:
        if isinstance(node, InputNode) and node.sensitive and node.store_as in wanted:
            return nid
    return None


def step(state: IvrState, event: IvrEvent) -> tuple[IvrState, list[Command]]:
    if state.phase is Phase.ENDED:
        return state, []  # late events (playback finished after the hang-up...) change nothing
    if not isinstance(event, TimerFired | LookupDone | PromptCheck) and (
        event.call_id != state.call_id
    ):
        return replace(state, last_transition=f"event for call {event.call_id} ignored"), []
    tx = _Step(state, event.at)
    match event:
        case CallerHungUp() | CallEnded():
            tx.caller_gone(event)
        case _ if state.phase is Phase.ENDING:
            tx.note(f"{type(event).__name__} ignored while ending")
        case DigitPressed(digit=digit):
            tx.digit(digit)
        case PromptFinished(prompt_id=pid, failed=failed):
            tx.prompt_done(pid, "failed" if failed else "finished")
        case PromptCheck(prompt_id=pid, playing=playing):
            if playing:
                tx.note(f"prompt {pid} still playing")
            else:
                tx.prompt_done(pid, "found finished")
        case CallResynced():
            tx.resync()
        case TimerFired(timer_id=tid):
            tx.timer_fired(tid)
        case LookupDone():
            tx.lookup_done(event)
    return tx.finish()


class _Step:
    """The work of one step: the state as it changes and the commands so far.

    Mutable, but only inside one call of ``start``/``step``; what leaves is frozen.
    """

    def __init__(self, state: IvrState, at: datetime) -> None:
        self.s = state
        self.at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        self.out: list[Command] = []
        self.notes: list[str] = []
        self.entered = 0  # nodes entered without waiting for the caller

    # -- plumbing --------------------------------------------------------------------------

    def finish(self) -> tuple[IvrState, list[Command]]:
        return replace(self.s, last_transition="; ".join(self.notes)), self.out

    def emit(self, cmd: Command) -> None:
        self.out.append(cmd)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def set(self, **changes: object) -> None:
        self.s = replace(self.s, **changes)  # type: ignore[arg-type]

    def record(self, kind: str, choice: str | None = None, node_id: str | None = None) -> None:
        seq = self.s.path_seq + 1
        self.set(path_seq=seq, prompts_in_seq=0)
        self.emit(RecordStep(seq, node_id or self.s.node_id, kind, choice, self.at))

    def play(self, media: tuple[str, ...]) -> bool:
        """Queue ``media`` as one prompt; False if there is nothing to play."""
        if not media:
            return False
        s = self.s
        gen = f"g{s.generation}-" if s.generation else ""
        pid = f"{s.call_id}-{gen}{s.path_seq}-{s.prompts_in_seq}"
        self.set(playing=(*s.playing, pid), prompts_in_seq=s.prompts_in_seq + 1)
        self.emit(Play(pid, media, s.language))
        return True

    def stop_prompts(self) -> None:
        if self.s.playing:
            self.emit(StopPrompts(self.s.playing))
            self.set(playing=())

    def start_timer(self, seconds: float) -> None:
        self.cancel_timer()
        n = self.s.timers_started + 1
        tid = f"{self.s.call_id}-t{n}"
        self.set(timer_id=tid, timers_started=n)
        self.emit(StartTimer(tid, seconds))

    def cancel_timer(self) -> None:
        if self.s.timer_id is not None:
            self.emit(CancelTimer(self.s.timer_id))
            self.set(timer_id=None)

    def update_attributes(self, updates: Mapping[str, str]) -> None:
        attrs = dict(self.s.attributes)
        for key, value in updates.items():
            if key == "language":
                if value not in self.s.flow.languages:
                    self.note(f"language {value!r} not offered by the flow; kept {self.s.language}")
                    continue
                if value != self.s.language:
                    self.set(language=value)
                    self.emit(SetLanguage(value))
                    self.note(f"language -> {value}")
            attrs[key] = value
        self.set(attributes=_frozen(attrs))

    def end(self, reason: str) -> None:
        """The flow ends the call: Hangup, then wait for the call's end."""
        self.cancel_timer()
        self.stop_prompts()
        self.set(phase=Phase.ENDING, end_reason=reason, type_ahead="")
        self.emit(Hangup(reason))
        self.note(f"hang up ({reason})")

    # -- walking nodes ---------------------------------------------------------------------

    def go(self, target: str | None) -> None:
        """Enter ``target`` and whatever follows it at once, until a node waits."""
        while target is not None:
            if self.entered >= MAX_CHAIN:
                self.record("flow_loop", target)
                self.note(f"{MAX_CHAIN} nodes without waiting: a loop")
                self.end("flow_loop")
                return
            self.entered += 1
            target = self.enter(target)

    def enter(self, node_id: str) -> str | None:
        """Enter a node; the node to go on to at once, or None when it waits."""
        try:
            node = self.s.flow.node(node_id)
        except KeyError:
            self.record("flow_error", node_id)
            self.note(f"no node {node_id!r} in flow {self.s.flow.name}")
            self.end("flow_error")
            return None
        self.cancel_timer()
        self.set(node_id=node_id, digits="", attempt=1, phase=Phase.PLAYING)
        self.record("enter")
        self.note(f"-> {node_id} ({_kind(node)})")
        match node:
            case PlayNode():
                if node.barge_in and self.s.type_ahead:
                    self.record("skipped", "type_ahead")
                    self.note(f"{node_id}: skipped (type-ahead)")
                    return node.next
                return None if self.play(node.prompts) else node.next
            case MenuNode():
                self.set(menu_depth=self.s.menu_depth + 1)
                if self.s.type_ahead:
                    return self.menu_key(node, self.take_type_ahead())
                if not self.play(node.prompts):
                    self.wait_digits(node)
                return None
            case InputNode():
                if self.s.type_ahead:
                    while self.s.type_ahead:
                        collecting, nxt = self.input_digit(node, self.take_type_ahead())
                        if not collecting:
                            return nxt
                    self.wait_digits(node)
                    return None
                if not self.play(node.prompts):
                    self.wait_digits(node)
                return None
            case ConditionNode():
                return self.branch(node)
            case SetNode():
                self.update_attributes(dict(node.values))
                return node.next
            case LookupNode():
                return self.lookup(node)
            case SayNode():
                return self.say(node)
            case TransferNode():
                if not self.play(node.prompts):
                    self.transfer(node)
                return None
            case HangupNode():
                # The flow has decided: a caller leaving during the message is not abandoning.
                self.set(end_reason=node.reason)
                if not self.play(node.prompts):
                    self.end(node.reason)
                return None

    def take_type_ahead(self) -> str:
        d, rest = self.s.type_ahead[0], self.s.type_ahead[1:]
        self.set(type_ahead=rest)
        self.entered = 0  # a digit the caller pressed: the chain waited for the caller
        return d

    def wait_digits(self, node: MenuNode | InputNode) -> None:
        if isinstance(node, MenuNode):
            seconds = node.timeout_seconds
        elif self.s.digits:
            seconds = node.inter_digit_timeout_seconds
        else:
            seconds = node.first_digit_timeout_seconds
        self.start_timer(seconds)
        self.set(phase=Phase.WAITING_DIGITS)

    def prompts_finished(self) -> str | None:
        """Every prompt of the current node is done: what the node does next."""
        node = self.s.node
        match node:
            case PlayNode() | SayNode():
                return node.next
            case MenuNode() | InputNode():
                self.wait_digits(node)
            case TransferNode():
                self.transfer(node)
            case HangupNode():
                self.end(node.reason)
            case _:
                pass  # nodes that play nothing
        return None

    def transfer(self, node: TransferNode) -> None:
        self.cancel_timer()
        reason = f"transfer:{node.queue}"
        self.record("transfer", node.queue)
        self.set(phase=Phase.ENDING, end_reason=reason, type_ahead="")
        self.emit(Transfer(node.queue, self.s.attributes))
        self.note(f"transfer to {node.queue}")

    # -- menus and inputs ------------------------------------------------------------------

    def menu_key(self, node: MenuNode, key: str) -> str | None:
        flow = self.s.flow
        target = node.target(key)
        if target is not None:
            self.record("option", key)
            self.note(f"{node.id}: key {key} -> {target}")
            return target
        if key == node.repeat_key:
            self.record("repeat", key)
            self.note(f"{node.id}: key {key} repeats")
            self.set(type_ahead="")
            if not self.play(node.prompts):
                self.wait_digits(node)
            else:
                self.set(phase=Phase.PLAYING)
            return None
        if (
            node.zero_out
            and flow.zero_out_target is not None
            and flow.zero_out_key is not None
            and key == flow.zero_out_key
        ):
            self.record("zero_out", key)
            self.note(f"{node.id}: key {key} zero-out -> {flow.zero_out_target}")
            return flow.zero_out_target
        self.record("invalid", key)
        self.note(f"{node.id}: invalid key {key}")
        return self.retry(node, "invalid")

    def input_digit(self, node: InputNode, d: str) -> tuple[bool, str | None]:
        """Take one digit: (still collecting, else the node to go to or None)."""
        if node.terminator is not None and d == node.terminator:
            return False, self.input_complete(node, f"terminator {d}")
        if d == "*":
            self.set(digits="")
            self.record("input_cleared")
            self.note(f"{node.id}: * clears the input")
            return True, None
        digits = self.s.digits + d
        self.set(digits=digits)
        if len(digits) >= node.max_length:
            return False, self.input_complete(node, "max length")
        return True, None

    def input_complete(self, node: InputNode, why: str) -> str | None:
        self.cancel_timer()
        digits = self.s.digits
        # A sensitive input's digits never reach a step record (stored) nor a note (logged).
        recorded = None if node.sensitive else digits
        if _valid_input(node, digits):
            self.record("input", recorded)
            self.update_attributes({node.store_as: digits})
            self.set(digits="")
            self.note(f"{node.id}: input ({why}) stored as {node.store_as} -> {node.next}")
            return node.next
        self.record("invalid", recorded)
        self.note(f"{node.id}: input ({why}) invalid")
        return self.retry(node, "invalid")

    def retry(self, node: MenuNode | InputNode, why: Literal["invalid", "no_input"]) -> str | None:
        r = node.retry
        self.cancel_timer()
        self.set(type_ahead="", digits="")
        if self.s.attempt >= max(1, r.max_attempts):
            self.record("max_attempts", why)
            if r.on_failure:
                self.note(f"{node.id}: attempts used up -> {r.on_failure}")
                return r.on_failure
            self.note(f"{node.id}: attempts used up, no on_failure")
            self.end("max_attempts")
            return None
        self.set(attempt=self.s.attempt + 1, phase=Phase.PLAYING)
        self.note(f"{node.id}: attempt {self.s.attempt}/{r.max_attempts}")
        retry_prompts = r.invalid_prompts if why == "invalid" else r.no_input_prompts
        played = self.play(retry_prompts)
        played = self.play(node.prompts) or played
        if not played:
            self.wait_digits(node)
        return None

    # -- other nodes -----------------------------------------------------------------------

    def branch(self, node: ConditionNode) -> str:
        for b in node.branches:
            if self.holds(b.when):
                label = _describe(b.when)
                self.record("branch", label)
                self.note(f"{node.id}: {label} -> {b.goto}")
                return b.goto
        self.record("branch", "otherwise")
        self.note(f"{node.id}: otherwise -> {node.otherwise}")
        return node.otherwise

    def holds(self, cond: Condition) -> bool:
        attrs = self.s.attributes
        match cond:
            case InBusinessHours(calendar=name):
                cal = self.calendar(name)
                return cal is not None and _is_open(cal, self.at)
            case IsHoliday(calendar=name):
                cal = self.calendar(name)
                return cal is not None and cal.closed_day(_local(cal, self.at).date())
            case AttrEquals(attr=attr, value=value):
                return attrs.get(attr) == value
            case AttrIn(attr=attr, values=values):
                return attrs.get(attr) in values
            case AttrPresent(attr=attr):
                return bool(attrs.get(attr))
        return False  # pragma: no cover - Condition is closed

    def calendar(self, name: str) -> Calendar | None:
        try:
            cal = self.s.flow.calendar(name)
            ZoneInfo(cal.timezone)
        except (KeyError, ValueError, ZoneInfoNotFoundError):
            # The loader checks calendars; should one slip through, the condition is false.
            self.note(f"calendar {name!r} unknown or with an unknown time zone: false")
            return None
        return cal

    def lookup(self, node: LookupNode) -> str | None:
        try:
            url = render_url(node.url, self.s.attributes)
        except LookupUrlRefused as err:
            # The reason names the attribute, never its value (caller data; this is logged).
            self.record("lookup_failed", err.choice)
            self.note(f"{node.id}: URL refused ({err.choice}) -> {node.on_failure}")
            return node.on_failure
        self.set(phase=Phase.LOOKING_UP)
        self.emit(
            Lookup(node.id, url, node.timeout_seconds, 1 + max(0, node.retries), node.headers)
        )
        return None

    def lookup_done(self, event: LookupDone) -> None:
        node = self.s.node
        if (
            self.s.phase is not Phase.LOOKING_UP
            or not isinstance(node, LookupNode)
            or event.node_id != node.id
        ):
            self.note(f"stale lookup answer for {event.node_id} ignored")
            return
        if event.ok:
            self.record("lookup_ok")
            self.update_attributes({f"{node.store_prefix}{k}": v for k, v in event.data.items()})
            self.note(f"{node.id}: lookup ok ({len(event.data)} fields) -> {node.next}")
            self.go(node.next)
        else:
            self.record("lookup_failed")
            self.note(f"{node.id}: lookup failed -> {node.on_failure}")
            self.go(node.on_failure)

    def say(self, node: SayNode) -> str | None:
        value = self.s.attributes.get(node.value)
        if value is None:
            self.record("say", "missing")
            self.note(f"{node.id}: no attribute {node.value}; not said")
            return node.next
        try:
            said = say_media(node.kind, value, self.s.language)
        except ValueError as err:
            self.record("say", "invalid")
            self.note(f"{node.id}: {err}; not said")
            return node.next
        media = (*node.prompts_before, *said, *node.prompts_after)
        return None if self.play(media) else node.next

    # -- events ----------------------------------------------------------------------------

    def digit(self, d: str) -> None:
        s = self.s
        node = s.node
        if s.phase is Phase.LOOKING_UP:
            self.keep_type_ahead(d)
            return
        match node:
            case MenuNode():
                self.stop_prompts()
                self.cancel_timer()
                self.go(self.menu_key(node, d))
            case InputNode():
                self.stop_prompts()
                self.cancel_timer()
                collecting, target = self.input_digit(node, d)
                if collecting:
                    self.wait_digits(node)
                else:
                    self.go(target)
            case PlayNode(barge_in=True) | SayNode() if s.playing:
                self.record("barge_in")
                self.note(f"{node.id}: barge-in")
                self.stop_prompts()
                self.keep_type_ahead(d)
                self.go(node.next)
            case _:
                self.note(f"{node.id}: digit dropped")

    def keep_type_ahead(self, d: str) -> None:
        if len(self.s.type_ahead) < MAX_TYPE_AHEAD:
            self.set(type_ahead=self.s.type_ahead + d)
            self.note("digit kept as type-ahead")
        else:
            self.note("type-ahead full: digit dropped")

    def prompt_done(self, pid: str, how: str) -> None:
        playing = self.s.playing
        if pid not in playing:
            self.note(f"stale prompt {pid} ignored")
            return
        # Queued prompts play in order: everything before this one is done too.
        self.set(playing=playing[playing.index(pid) + 1 :])
        self.note(f"prompt {pid} {how}")
        if not self.s.playing and self.s.phase is Phase.PLAYING:
            self.go(self.prompts_finished())

    def resync(self) -> None:
        for pid in self.s.playing:
            self.emit(CheckPrompt(pid))
        self.note(f"resync: checking {len(self.s.playing)} prompt(s)")

    def timer_fired(self, tid: str) -> None:
        s = self.s
        if tid != s.timer_id:
            self.note(f"stale timer {tid} ignored")
            return
        self.set(timer_id=None)
        node = s.node
        match node:
            case MenuNode():
                self.record("no_input")
                self.note(f"{node.id}: no input")
                self.go(self.retry(node, "no_input"))
            case InputNode() if s.digits:
                self.go(self.input_complete(node, "inter-digit timeout"))
            case InputNode():
                self.record("no_input")
                self.note(f"{node.id}: no input")
                self.go(self.retry(node, "no_input"))
            case _:  # pragma: no cover - timers run only at menus and inputs
                self.note(f"timer {tid} at {node.id} ignored")

    def caller_gone(self, event: CallerHungUp | CallEnded) -> None:
        s = self.s
        self.cancel_timer()
        engine_reason = event.reason if isinstance(event, CallEnded) else None
        if engine_reason and s.phase is not Phase.ENDING:
            self.record("lost", engine_reason)
            reason = engine_reason
        elif s.end_reason:
            reason = s.end_reason  # the flow had decided to end
        else:
            self.record("abandoned")
            reason = "caller_abandoned_ivr"
        self.set(phase=Phase.ENDED, end_reason=reason, playing=(), type_ahead="")
        self.note(f"call ended at {s.node_id}: {reason}")


# ---- pure helpers ---------------------------------------------------------------------------


def _kind(node: Node) -> str:
    return type(node).__name__.removesuffix("Node").lower()


def _valid_input(node: InputNode, digits: str) -> bool:
    if not node.min_length <= len(digits) <= node.max_length:
        return False
    if node.pattern is None:
        return True
    try:
        return re.fullmatch(node.pattern, digits) is not None
    except re.error:
        return False  # the loader checks patterns; a bad one fails every input


def _local(cal: Calendar, at: datetime) -> datetime:
    return at.astimezone(ZoneInfo(cal.timezone))


def _is_open(cal: Calendar, at: datetime) -> bool:
    local = _local(cal, at)
    if cal.closed_day(local.date()):
        return False
    now = local.time()
    for span in cal.open_spans:
        # An end of 00:00 means midnight at the end of the day (the model has no 24:00).
        until_midnight = span.end == time(0)
        if (
            local.weekday() in span.weekdays
            and span.start <= now
            and (until_midnight or now < span.end)
        ):
            return True
    return False


def _describe(cond: Condition) -> str:
    match cond:
        case InBusinessHours(calendar=name):
            return f"in_business_hours:{name}"
        case IsHoliday(calendar=name):
            return f"is_holiday:{name}"
        case AttrEquals(attr=attr, value=value):
            return f"{attr}={value}"
        case AttrIn(attr=attr, values=values):
            return f"{attr} in {','.join(sorted(values))}"
        case AttrPresent(attr=attr):
            return f"{attr} present"
    return "?"  # pragma: no cover - Condition is closed
