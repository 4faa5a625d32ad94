"""The IVR's vocabulary: flows, nodes and calendars as frozen dataclasses.

A flow file (YAML) is loaded into these by ``ivr/loader.py`` and validated there; the pure
machine in ``ivr/menu.py`` walks them; nothing here does I/O. Prompts are Asterisk media
references (``sound:sambung/main-menu``) looked up in the caller's language with English as the
fallback. The feature's own config (``IvrConfig``) is here too, converted from the shell's
settings by ``ivr.config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Literal

from sambung.engine.calendars import HolidayCalendar

# ---- calendars ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenSpan:
    """Open from ``start`` to ``end`` (local time, end exclusive) on the given weekdays.

    Weekdays follow ``date.weekday()``: Monday is 0, Sunday 6.
    """

    weekdays: frozenset[int]
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Calendar:
    """Business hours of one hotline, in its own time zone, with its holidays."""

    name: str
    timezone: str  # IANA name, e.g. "Asia/Jakarta"
    open_spans: tuple[OpenSpan, ...]
    holidays: frozenset[date] = frozenset()  # the hotline's own closing days
    # The shared holiday calendar (national holidays from the settings' [calendars]), and
    # whether a day it does not cover counts as open (else closed: fail closed).
    national: HolidayCalendar | None = None
    unknown_days_open: bool = False

    def closed_day(self, day: date) -> bool:
        """A holiday of the hotline, of the shared calendar, or a day nobody knows about."""
        if day in self.holidays:
            return True
        if self.national is None:
            return False
        if not self.national.covers(day):
            return not self.unknown_days_open
        return day in self.national


# ---- conditions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InBusinessHours:
    """True when the call's time falls in the flow calendar's open spans and is no holiday."""

    calendar: str


@dataclass(frozen=True, slots=True)
class IsHoliday:
    calendar: str


@dataclass(frozen=True, slots=True)
class AttrEquals:
    """A call attribute (``caller_number``, ``language``, a lookup result...) equals a value."""

    attr: str
    value: str


@dataclass(frozen=True, slots=True)
class AttrIn:
    attr: str
    values: frozenset[str]


@dataclass(frozen=True, slots=True)
class AttrPresent:
    attr: str


Condition = InBusinessHours | IsHoliday | AttrEquals | AttrIn | AttrPresent


@dataclass(frozen=True, slots=True)
class Branch:
    when: Condition
    goto: str


# ---- nodes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retry:
    """What a menu or input does when the caller presses nothing or something invalid."""

    max_attempts: int = 3  # attempts in all, including the first
    no_input_prompts: tuple[str, ...] = ()
    invalid_prompts: tuple[str, ...] = ()
    on_failure: str = ""  # node to go to when attempts run out


@dataclass(frozen=True, slots=True)
class PlayNode:
    """Play prompts, then go on. With ``barge_in`` a digit stops the prompts (and the queued
    ones) and is carried into the next node as its first key press (type-ahead)."""

    id: str
    prompts: tuple[str, ...]
    next: str
    barge_in: bool = True


@dataclass(frozen=True, slots=True)
class MenuNode:
    """Prompts, then one key chooses among ``options`` (key -> node id).

    ``repeat_key`` plays the menu again without using up an attempt; the flow's zero-out key
    (``Flow.zero_out``) works on every menu unless ``zero_out`` is False here.
    """

    id: str
    prompts: tuple[str, ...]
    options: tuple[tuple[str, str], ...]  # (key, node id), in file order
    timeout_seconds: float = 5.0
    retry: Retry = Retry()
    repeat_key: str | None = None
    zero_out: bool = True

    def target(self, key: str) -> str | None:
        for k, node in self.options:
            if k == key:
                return node
        return None


@dataclass(frozen=True, slots=True)
class InputNode:
    """Collect several digits (an account number, a date of birth) into ``store_as``."""

    id: str
    prompts: tuple[str, ...]
    store_as: str
    next: str
    min_length: int = 1
    max_length: int = 20
    terminator: str | None = "#"
    first_digit_timeout_seconds: float = 5.0
    inter_digit_timeout_seconds: float = 3.0
    pattern: str | None = None  # a full-match regular expression over the digits
    retry: Retry = Retry()
    # The digits are never stored in the step records nor in the session's attributes, and
    # never logged; the call still has them (a lookup may use them, the agent sees them).
    sensitive: bool = False


@dataclass(frozen=True, slots=True)
class ConditionNode:
    """First branch whose condition holds wins; otherwise ``otherwise``."""

    id: str
    branches: tuple[Branch, ...]
    otherwise: str


@dataclass(frozen=True, slots=True)
class SetNode:
    """Set call attributes used later: ``language``, ``skills``, ``priority``, anything."""

    id: str
    values: tuple[tuple[str, str], ...]
    next: str


@dataclass(frozen=True, slots=True)
class EnvHeader:
    """A request header whose value the flow names by environment variable (``env``), read
    when the flow is loaded: secrets (an API key) stay out of flow files and out of URLs.
    The value never shows in a repr, so a logged node or command cannot leak it."""

    name: str
    env: str
    value: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class LookupNode:
    """Ask the customer's CRM or debt system; the JSON object it returns becomes attributes.

    ``url`` is a template over call attributes (``http://crm/accounts/{account}``); each value
    is one encoded path segment, and caller data that would make a ``.``, ``..`` or empty
    segment fails the lookup (``ivr/urls.py``). One retry after a failure or timeout, then
    ``on_failure``. ``headers`` are sent with every attempt.
    """

    id: str
    url: str
    next: str
    on_failure: str
    timeout_seconds: float = 3.0
    retries: int = 1
    store_prefix: str = ""  # attributes are stored as <store_prefix><key>
    headers: tuple[EnvHeader, ...] = ()


SayKind = Literal["number", "digits", "money"]


@dataclass(frozen=True, slots=True)
class SayNode:
    """Say a value from the call's attributes: ``prompts_before``, the value, ``prompts_after``.

    ``value`` names an attribute; ``money`` says an amount in rupiah.
    """

    id: str
    value: str
    kind: SayKind
    next: str
    prompts_before: tuple[str, ...] = ()
    prompts_after: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TransferNode:
    """Hand the call to a queue. Until queues exist: the prompts, then a polite hang-up."""

    id: str
    queue: str
    prompts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HangupNode:
    id: str
    prompts: tuple[str, ...] = ()
    reason: str = "ivr_completed"


Node = (
    PlayNode
    | MenuNode
    | InputNode
    | ConditionNode
    | SetNode
    | LookupNode
    | SayNode
    | TransferNode
    | HangupNode
)


@dataclass(frozen=True, slots=True)
class Flow:
    """One IVR, shared by the DIDs that dial it."""

    name: str
    dids: tuple[str, ...]
    start: str
    nodes: tuple[tuple[str, Node], ...]  # (id, node), in file order
    default_language: str = "id"
    languages: tuple[str, ...] = ("id", "en")
    calendars: tuple[Calendar, ...] = ()
    zero_out_key: str | None = "0"
    zero_out_target: str | None = None  # node id; None disables zero-out
    source: str = ""  # the file it came from, for messages
    version: str = ""  # content hash: calls keep the version they started with
    _index: dict[str, Node] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update(self.nodes)

    def node(self, node_id: str) -> Node:
        return self._index[node_id]

    def calendar(self, name: str) -> Calendar:
        for c in self.calendars:
            if c.name == name:
                return c
        raise KeyError(name)


# ---- the feature's config -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HotlineConfig:
    did: str
    name: str
    language: str = "en"
    greeting: tuple[str, ...] = ()
    queue: str | None = None  # the queue greets instead (no greeting of its own)


@dataclass(frozen=True, slots=True)
class IvrConfig:
    """What the IVR reads, converted from the shell's settings by ``ivr.config``."""

    flows: tuple[Path, ...] = ()  # flow files
    max_menu_depth: int = 4
    # Queues a transfer node may name: the IVR's declared ones and every ACD queue (not
    # named ``queues``: the settings' ``ivr.queues`` are only the declared ones).
    transfer_queues: tuple[str, ...] = ()
    # Asterisk's sounds folder as this machine sees it; None skips the prompt check.
    sounds_root: Path | None = None
    digits_retention_days: int = 90  # 0 keeps them for ever
    hotlines: tuple[HotlineConfig, ...] = ()
    unknown_number_prompts: tuple[str, ...] = ("sound:sambung/unknown-number",)
    max_silent_seconds: float = 300.0
    # Calendars whose days they do not cover count as open for business hours.
    unknown_days_open: tuple[str, ...] = ()
    # How long a caller in a flow may go without an engine before Asterisk releases it (the
    # ACD's bound, [acd] adopt_within_seconds: one bound for every caller); 0: no safeguard.
    adopt_within_seconds: float = 120.0
    source: str = "(settings)"  # the settings file, named in a config error
