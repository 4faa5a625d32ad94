"""The ACD's configuration as frozen values: exactly what the ACD reads, nothing more.

``acd.config`` converts the shell's settings into these (``acd/settings.py``); the rest of the
ACD, and the dialer that builds its campaign queues on the ACD, never see the settings. The
settings validate (ranges, patterns, cross-references) once at start-up, so nothing here checks
again. The defaults match the settings' own, so a test can build a queue with only what it
cares about (``tests/unit/test_feature_config.py`` holds them together).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sambung.dialer.phones import DEFAULT_PHONE_TYPES

OverflowAction = Literal["queue", "relax", "message", "callback", "hangup"]
RoutingStrategy = Literal["longest_idle", "fewest_calls", "best_skill", "round_robin"]
DispositionField = Literal["amount", "date", "callback_at"]
DispositionThen = Literal["done", "retry", "callback", "bad_number"]


@dataclass(frozen=True, slots=True)
class SkillNeedConfig:
    skill: str
    min_level: int = 1


@dataclass(frozen=True, slots=True)
class RelaxStepConfig:
    # After this many seconds of waiting, ``needs`` replaces the queue's needs for the call.
    after_seconds: float
    needs: tuple[SkillNeedConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class OverflowConfig:
    # What happens when the queue is full on arrival or a caller has waited max_wait_seconds.
    action: OverflowAction = "hangup"
    target: str | None = None  # the queue, for action "queue"
    prompts: tuple[str, ...] = ()  # said first; defaults per action


@dataclass(frozen=True, slots=True)
class DispositionConfig:
    """A code an agent may record at the end of a call, and what it asks for
    (checked by ``acd.dispositions``; a campaign's also say what happens to the record)."""

    code: str
    label: str
    needs: tuple[DispositionField, ...] = ()
    right_party: bool = False  # the agent spoke with the debtor in person
    promise: bool = False  # counts as a promise to pay (amount and date)
    paid: bool = False  # the debtor says it is paid: stop calling at once
    then: DispositionThen = "done"


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str
    language: str = "en"
    greeting: tuple[str, ...] = ()
    moh_class: str = "default"
    announce_every_seconds: float = 30.0  # 0 = never
    announce_position: bool = True
    announce_wait: bool = True
    priority: int = 0  # higher first; campaign queues use -1 to let inbound calls go first
    aging_seconds: float = 120.0  # 0 = no aging
    max_wait_seconds: float = 900.0
    max_length: int = 100
    overflow: OverflowConfig = OverflowConfig()
    service_level_seconds: float = 20.0
    wrap_up_seconds: float = 10.0
    ring_timeout_seconds: int = 15
    strategy: RoutingStrategy = "longest_idle"
    needs: tuple[SkillNeedConfig, ...] = ()
    relax: tuple[RelaxStepConfig, ...] = ()
    callback_key: str = ""  # "" = no callback offer while waiting
    whisper: tuple[str, ...] = ()
    default_handle_seconds: float = 180.0
    auto_answer: bool = False
    # Empty accepts any code with a note.
    dispositions: tuple[DispositionConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentConfig:
    id: str
    name: str
    endpoint: str
    # Out of repr: a config is the kind of value that ends up in a log line or a traceback.
    pin: str = field(repr=False)
    skills: tuple[tuple[str, int], ...] = ()  # (skill, level), sorted by skill
    queues: tuple[str, ...] = ()
    team: str = ""


@dataclass(frozen=True, slots=True)
class CallbackRuleConfig:
    """Which caller ids a queue may call back, and when (see ``acd.callback_rules``)."""

    phone_types: tuple[str, ...] = DEFAULT_PHONE_TYPES
    international_prefixes: tuple[str, ...] = ()
    max_per_number_per_day: int = 2
    calendar: str = "id-national"
    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    start: str = "08:00"
    end: str = "20:00"
    last_dial_margin_minutes: int = 5


@dataclass(frozen=True, slots=True)
class AcdConfig:
    short_abandon_seconds: float = 5.0
    service_level_window_seconds: float = 3600.0
    hold_reminder_seconds: float = 60.0
    callback_trunk: str = "customers"
    callbacks: CallbackRuleConfig = CallbackRuleConfig()
    queues: tuple[QueueConfig, ...] = ()
    agents: tuple[AgentConfig, ...] = ()
    # From the shell's call settings: a call that gets no event at all for this long is
    # presumed stuck and hung up.
    max_silent_seconds: float = 300.0
    # A waiting caller no engine drives is released by Asterisk after this long (the
    # safeguard, refreshed every third of it while an engine owns the call).
    adopt_within_seconds: float = 120.0
