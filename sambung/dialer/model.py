"""The dialer's configuration as frozen values: exactly what the dialer reads, nothing more.

``dialer.config`` converts the shell's settings into these (``dialer/settings.py``); the rest
of the dialer never sees the settings. The settings validate once at start-up and hold the
defaults (the retry rules, the buckets and the dispositions of a collections campaign), so a
campaign here has every field given: tests convert a ``CampaignSettings`` to get one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sambung.acd.model import DispositionConfig

CampaignMode = Literal["preview", "progressive", "predictive", "reminder"]
Blend = Literal["inbound_first", "equal", "outbound_first"]


@dataclass(frozen=True, slots=True)
class BucketConfig:
    """Days past due from ``min_days`` to ``max_days`` (None: open-ended)."""

    name: str
    min_days: int
    max_days: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignConfig:
    name: str
    mode: CampaignMode
    # Who works it: these agents, plus every agent with ``skill`` at ``min_level`` or above.
    agents: tuple[str, ...]
    skill: str | None
    min_level: int
    trunk: str
    caller_id: str
    max_lines: int
    # Abandoned live answers over live answers, planned against over the rolling window.
    abandon_cap: float
    abandon_window_hours: float
    # Live answers in the window before the pacer's closed loop steers.
    pacing_warmup_live: int
    # A live answer gets an agent within this long, or hears the safe-harbour message.
    connect_limit_seconds: float
    safe_harbour: tuple[str, ...]
    machine_message: tuple[str, ...]
    amd: bool
    ring_seconds: int
    wrap_up_seconds: float
    blend: Blend
    moh_class: str
    whisper: tuple[str, ...]
    auto_answer: bool
    # Calling window, in the debtor's local time.
    days: tuple[int, ...]
    start: str  # HH:MM
    end: str
    last_dial_margin_minutes: int
    calendar: str  # a name from the holiday calendars
    max_attempts_per_day: int
    max_attempts_per_7_days: int
    # (outcome, rule): every outcome has one (the settings merge in the defaults).
    retry: tuple[tuple[str, str], ...]
    default_zone: str
    default_language: str
    buckets: tuple[BucketConfig, ...]
    dispositions: tuple[DispositionConfig, ...]
    # Agentless reminders: said after the amount due; the key connects to an agent.
    reminder_key: str
    reminder_wait_seconds: float
    # The debtor number types this campaign dials, in its own order.
    phone_types: tuple[str, ...]
    # Attempts per record in all: a record that has had them is not dialled again
    # (``exhausted``), whatever its retry rules say; a disposition may still schedule it.
    max_attempts: int = 30


@dataclass(frozen=True, slots=True)
class DialerConfig:
    campaigns: tuple[CampaignConfig, ...] = ()
    # Do-not-call files (one number per line); applied at import and before every dial.
    dnc_files: tuple[Path, ...] = ()
    tick_seconds: float = 1.0
