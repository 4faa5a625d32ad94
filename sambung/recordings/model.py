"""The recordings feature's values: policies, talks, recordings, monitoring modes, roles, and
the feature's own config (converted from the shell's settings by ``recordings.config``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from sambung.auth.model import Role as Role  # re-exported: the recordings code names it from here


class Policy(StrEnum):
    ALL = "all"  # every agent-connected call
    NONE = "none"  # never
    ON_DEMAND = "on_demand"  # when asked through the API


class Action(StrEnum):
    """What a principal may ask of the recordings feature (see ``policy.may``)."""

    CONTROL = "control"  # start, pause, resume, stop the recording of a live call
    LIST = "list"  # recordings' metadata
    LISTEN = "listen"  # the file, played in place
    DOWNLOAD = "download"  # the file, saved
    MONITOR = "monitor"  # listen, whisper or barge on a live call
    AUDIT = "audit"  # read the audit trails


class MonitorMode(StrEnum):
    LISTEN = "listen"  # the supervisor hears agent and caller; nobody hears the supervisor
    WHISPER = "whisper"  # ... and the agent alone hears the supervisor (coaching)
    BARGE = "barge"  # ... and both hear the supervisor


# Snoop directions on the agent's channel (ari-notes 1.6): ``spy`` is what the snoop channel
# hears, ``whisper`` where its audio goes. "out" is toward the agent's phone only; "both" also
# feeds the agent's side of the bridge, so the caller (and the recording) hear a barge.
SNOOP_DIRECTIONS: Mapping[MonitorMode, tuple[str, str]] = {
    MonitorMode.LISTEN: ("both", "none"),
    MonitorMode.WHISPER: ("both", "out"),
    MonitorMode.BARGE: ("both", "both"),
}


@dataclass(frozen=True, slots=True)
class ScopeRules:
    """What applies to one queue's or campaign's calls."""

    policy: Policy
    retention_days: int  # 0: kept for ever
    announcement: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rules:
    default: ScopeRules
    queues: Mapping[str, ScopeRules] = field(default_factory=dict)
    campaigns: Mapping[str, ScopeRules] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingsConfig:
    """What the feature reads, converted from the shell's settings by ``recordings.config``."""

    rules: Rules
    store_dir: Path  # finished recordings move here from Asterisk's spool
    retention_interval_seconds: float
    # A supervisor's own desk phone (PJSIP endpoint), by the name of their role token.
    supervisor_phones: Mapping[str, str]
    monitor_ring_seconds: int
    # This engine instance's journal of recording jobs, replayed at start.
    journal: Path
    # The longest wait before a failed recording job is tried again (the database's retry
    # cap: a job mostly fails because PostgreSQL or Asterisk is away).
    retry_max_seconds: float


@dataclass(frozen=True, slots=True)
class Talk:
    """An agent connected with a caller: the call's mixing bridge holds both."""

    call_id: str
    agent_id: str
    leg_id: str  # the agent's channel: what a supervisor's snoop listens to
    bridge_id: str
    queue: str
    campaign: str | None
    started_at: datetime


@dataclass(frozen=True, slots=True)
class PausedSpan:
    """Seconds from the start of the recording; ``end`` None while still paused."""

    start: float
    end: float | None


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class RetentionCandidate:
    name: str
    queue: str
    campaign: str | None
    started_at: datetime
    store_key: str
