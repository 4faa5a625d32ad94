"""What the pacer knows between rounds: agents' phases, what ended, the models built from it.

The service keeps one ``AgentPhases`` for the floor and one ``CampaignLearning`` per campaign,
feeds them as things happen (agent state changes, attempts going live or ending) and asks
them for the pacing inputs each round. Synchronous, on the event loop's thread; no I/O; times
are loop-clock seconds given by the caller. The models (``dialer/forecast.py``) are rebuilt
at most once a minute: a round then costs look-ups only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sambung.acd.agents import AgentState
from sambung.dialer import forecast

SAMPLES = 200  # talk and wrap-up durations kept per campaign
FINISHED = 2000  # finished attempts kept for the answer curve
REBUILD_SECONDS = 60.0
# The answer rate a new campaign starts from, and how many attempts that guess is worth.
PRIOR_RATE = 0.25
PRIOR_WEIGHT = 20
# Pseudo-samples behind each phase's survival (talk: the prior mean; wrap-up: its timer).
PHASE_PRIOR_WEIGHT = 5
PRIOR_TALK_SECONDS = 120.0

IN_CALL = frozenset(
    {AgentState.RESERVED, AgentState.RINGING, AgentState.ON_CALL, AgentState.ON_HOLD}
)

Stratum = tuple[int, str, str]  # (hour band of the debtor's local time, bucket, zone)


def stratum(bucket: str, zone: str, at: datetime) -> Stratum:
    """The stratum of a record dialled at ``at`` (aware): its local hour band, bucket, zone."""
    try:
        local = at.astimezone(ZoneInfo(zone))
    except (KeyError, ValueError):
        local = at
    return forecast.hour_band(local.hour), bucket, zone


class AgentPhases:
    """Each agent's phase (in a call, in wrap-up) and when it began."""

    def __init__(self) -> None:
        self._call: dict[str, float | None] = {}  # in a call: answered at (None: not yet)
        self._wrap: dict[str, float] = {}  # in wrap-up since

    def changed(
        self, agent_id: str, state: AgentState, now: float
    ) -> tuple[float | None, float | None]:
        """Note a state change; returns (talk seconds, wrap-up seconds) of a phase that ended."""
        talk: float | None = None
        wrap: float | None = None
        if agent_id in self._wrap and state is not AgentState.WRAP_UP:
            wrap = now - self._wrap.pop(agent_id)
        if state in IN_CALL:
            if state in (AgentState.ON_CALL, AgentState.ON_HOLD):
                if self._call.get(agent_id) is None:
                    self._call[agent_id] = now  # answered now (hold keeps the call's start)
            else:
                self._call[agent_id] = None  # reserved or ringing: talking has not begun
            return talk, wrap
        began = self._call.pop(agent_id, None)
        if began is not None:
            talk = now - began
        if state is AgentState.WRAP_UP:
            self._wrap[agent_id] = now
        return talk, wrap

    def talk_elapsed(self, agent_ids: Iterable[str], now: float) -> tuple[float, ...]:
        """Per agent in a call: seconds since it was answered (0 before)."""
        call = self._call
        return tuple(
            0.0 if (b := call[a]) is None else max(0.0, now - b) for a in agent_ids if a in call
        )

    def wrap_elapsed(self, agent_ids: Iterable[str], now: float) -> tuple[float, ...]:
        wrap = self._wrap
        return tuple(max(0.0, now - wrap[a]) for a in agent_ids if a in wrap)

    def phase(self, agent_id: str) -> str | None:
        if agent_id in self._call:
            return "talk"
        if agent_id in self._wrap:
            return "wrap_up"
        return None


@dataclass(slots=True)
class Models:
    talk: forecast.Survival
    wrap: forecast.Survival
    curve: forecast.AnswerCurve
    rates: forecast.RateTable


@dataclass(slots=True)
class CampaignLearning:
    """One campaign's history for the pacer, and the models built from it."""

    wrap_timer: float
    ring_seconds: float
    talks: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    wraps: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    # (seconds from the dial to the live answer, or to the end; live or not), oldest first.
    finished: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=FINISHED))
    tallies: dict[Stratum, list[int]] = field(default_factory=dict)  # [live, attempts]
    _models: Models | None = None
    _built_at: float | None = None
    _dirty: bool = True

    def talk_ended(self, seconds: float) -> None:
        self.talks.append(seconds)
        self._dirty = True

    def wrap_ended(self, seconds: float) -> None:
        self.wraps.append(seconds)
        self._dirty = True

    def attempt_resolved(self, seconds: float, live: bool, where: Stratum | None) -> None:
        """An attempt became a live answer (``seconds`` after its dial) or ended without one."""
        self.finished.append((max(0.0, seconds), live))
        if where is not None:
            t = self.tallies.setdefault(where, [0, 0])
            t[0] += 1 if live else 0
            t[1] += 1
        self._dirty = True

    def models(self, now: float) -> Models:
        fresh = self._built_at is not None and now - self._built_at < REBUILD_SECONDS
        if self._models is not None and (fresh or not self._dirty):
            return self._models
        lives = [s for s, live in self.finished if live]
        others = [s for s, live in self.finished if not live]
        self._models = Models(
            talk=forecast.survival(self.talks, PRIOR_TALK_SECONDS, PHASE_PRIOR_WEIGHT),
            wrap=forecast.survival(
                self.wraps,
                self.wrap_timer if self.wrap_timer > 0 else 1.0,
                PHASE_PRIOR_WEIGHT,
                limit=self.wrap_timer if self.wrap_timer > 0 else None,
            ),
            curve=forecast.answer_curve(
                lives,
                others,
                prior_rate=PRIOR_RATE,
                prior_weight=PRIOR_WEIGHT,
                ring_seconds=self.ring_seconds,
            ),
            rates=forecast.rate_table(
                {k: forecast.Tally(v[0], v[1]) for k, v in self.tallies.items()},
                prior_rate=PRIOR_RATE,
                prior_weight=PRIOR_WEIGHT,
            ),
        )
        self._built_at, self._dirty = now, False
        return self._models
