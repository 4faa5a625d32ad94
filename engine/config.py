"""Typed settings: defaults, then a TOML file, then the environment. Loaded once, passed in.

Why pydantic: the settings are nested, typed and validated with precise error locations, which
is exactly what turns a bad file into "file, key, what was expected". Domain modules never
import this module; the composition root hands each part only the values it needs.

Environment overrides use ``SAMBUNG_<SECTION>__<KEY>`` (for example
``SAMBUNG_ARI__PASSWORD``); ``DATABASE_URL`` is honoured as the conventional name for the
database URL, ``SAMBUNG_API_TOKEN`` adds an API token without writing it into a file, and
``SAMBUNG_METRICS_TOKEN`` a token named ``prometheus`` that may only read /metrics.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from dialer.phones import DEFAULT_PHONE_TYPES, PHONE_TYPES
from engine.errors import ConfigError


def known_phone_types(v: list[str], empty_means: str) -> list[str]:
    """A ``phone_types`` list: libphonenumber's type names, at least one."""
    unknown = sorted(set(v) - set(PHONE_TYPES))
    if unknown:
        raise ValueError(
            f"phone_types names unknown types {unknown}; types: {', '.join(PHONE_TYPES)}"
        )
    if not v:
        raise ValueError(f"phone_types is empty: {empty_means}")
    return v


Digits = Annotated[str, StringConstraints(pattern=r"^[0-9]{2,20}$")]
# A prompt is a media reference Asterisk understands: sound:<name>, digits:<n>, number:<n>...
Prompt = Annotated[
    str, StringConstraints(pattern=r"^(sound|digits|number|characters|tone|recording):\S+$")
]


Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Level = Annotated[int, Field(ge=1, le=5)]


class _Section(BaseModel):
    # Unknown keys are typos until proven otherwise: refuse them so they are noticed.
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineSettings(_Section):
    instance_id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] = (
        "sambung-1"
    )
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    drain_timeout_seconds: float = Field(default=15.0, ge=0, le=3600)
    spool_dir: Path = Path("var/spool")


class RoleTokenSettings(_Section):
    """A named API token with a role. An agent's token is named by the agent's id: agents may
    only act on their own calls. ``metrics`` may read /metrics and nothing else (give it to
    Prometheus). ``api_tokens`` (no name) have the admin role."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
    token: SecretStr
    role: Literal["agent", "supervisor", "admin", "metrics"]


# scheme://host[:port], as a browser sends it in Origin (no path, no trailing slash).
Origin = Annotated[str, StringConstraints(pattern=r"^https?://[A-Za-z0-9.\-\[\]:]+$")]


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    # 0 picks a free port (tests, side-by-side benchmarks); the bound port is logged at start.
    port: int = Field(default=8480, ge=0, le=65535)
    api_tokens: list[SecretStr] = Field(default_factory=list)
    role_tokens: list[RoleTokenSettings] = Field(default_factory=list)
    # Web pages served from elsewhere that may open the engine's WebSockets; a page from the
    # engine's own host (as the browser reached it) always may.
    allowed_origins: list[Origin] = Field(default_factory=list)

    @field_validator("api_tokens")
    @classmethod
    def _tokens_long_enough(cls, v: list[SecretStr]) -> list[SecretStr]:
        for t in v:
            if len(t.get_secret_value()) < 16:
                raise ValueError("each API token must be at least 16 characters")
        return v

    @field_validator("role_tokens")
    @classmethod
    def _role_tokens_sound(cls, v: list[RoleTokenSettings]) -> list[RoleTokenSettings]:
        names = [t.name for t in v]
        for i, t in enumerate(v):
            if len(t.token.get_secret_value()) < 16:
                raise ValueError(f"role_tokens[{i}].token must be at least 16 characters")
            if t.name in names[:i]:
                raise ValueError(f"role_tokens[{i}].name {t.name!r} is used twice")
        return v


class DatabaseSettings(_Section):
    url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/sambung")
    pool_min: int = Field(default=1, ge=1, le=100)
    pool_max: int = Field(default=10, ge=1, le=100)
    retry_max_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, v: SecretStr) -> SecretStr:
        if not re.match(r"^postgres(ql)?://", v.get_secret_value()):
            raise ValueError("expected a URL starting with postgresql://")
        return v


class AriSettings(_Section):
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^/]+$")] = "http://127.0.0.1:8088"
    username: str = "sambung"
    password: SecretStr = SecretStr("sambung-dev-secret")
    app: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,73}$")] = "sambung"
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=120)
    backoff_initial_seconds: float = Field(default=0.5, gt=0, le=60)
    backoff_max_seconds: float = Field(default=30.0, gt=0, le=600)
    request_timeout_seconds: float = Field(default=5.0, gt=0, le=60)


class AmiSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = "sambung"
    secret: SecretStr = SecretStr("sambung-dev-secret")
    ping_interval_seconds: float = Field(default=5.0, gt=0, le=300)
    ping_timeout_seconds: float = Field(default=3.0, gt=0, le=60)


class HotlineSettings(_Section):
    did: Digits
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    language: Literal["en", "id"] = "en"
    greeting: list[Prompt] = Field(default_factory=list)
    # Straight into this queue (which plays its own greeting) instead of greeting and hanging up.
    queue: Name | None = None

    @model_validator(mode="after")
    def _greeting_or_queue(self) -> HotlineSettings:
        if self.queue is None and not self.greeting:
            raise ValueError("a hotline needs a greeting, or a queue to send calls to")
        if self.queue is not None and self.greeting:
            raise ValueError("a hotline with a queue takes no greeting: the queue greets")
        return self


class CallSettings(_Section):
    unknown_number_prompts: list[Prompt] = Field(
        default_factory=lambda: ["sound:sambung/unknown-number"]
    )
    # A call that gets no event at all for this long is presumed stuck and hung up.
    max_silent_seconds: float = Field(default=300.0, gt=0)


class IvrSettings(_Section):
    # Flow files (YAML). Relative paths are taken from the settings file's folder.
    flows: list[Path] = Field(default_factory=list)
    max_menu_depth: int = Field(default=4, ge=1, le=20)
    # Queues a transfer node may name. The ACD will own this list; until then it is declared.
    queues: list[str] = Field(default_factory=list)
    # Asterisk's sounds folder as this machine sees it, to check that every prompt a flow
    # names exists; unset skips the check (the engine runs on another host than Asterisk).
    sounds_root: Path | None = None
    # Digits callers entered (account numbers...) are blanked in ivr_steps after this many
    # days, by a job at start and daily; 0 keeps them for ever.
    digits_retention_days: int = Field(default=90, ge=0, le=3650)


class SkillNeedSettings(_Section):
    skill: Name
    min_level: Level = 1


class RelaxStepSettings(_Section):
    # After this many seconds of waiting, ``needs`` replaces the queue's needs for the call.
    after_seconds: float = Field(gt=0, le=86400)
    needs: list[SkillNeedSettings] = Field(default_factory=list)


class OverflowSettings(_Section):
    # What happens when the queue is full on arrival or a caller has waited max_wait_seconds.
    action: Literal["queue", "relax", "message", "callback", "hangup"] = "hangup"
    target: Name | None = None  # the queue, for action "queue"
    prompts: list[Prompt] = Field(default_factory=list)  # said first; defaults per action

    @model_validator(mode="after")
    def _target_for_queue(self) -> OverflowSettings:
        if self.action == "queue" and self.target is None:
            raise ValueError("overflow action 'queue' needs a target queue")
        if self.action != "queue" and self.target is not None:
            raise ValueError(f"overflow action {self.action!r} takes no target")
        return self


class DispositionSettings(_Section):
    code: Name
    label: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    # Fields the agent must fill in: amount (a promise's amount), date (the promise's date),
    # callback_at (when to call again).
    needs: list[Literal["amount", "date", "callback_at"]] = Field(default_factory=list)
    right_party: bool = False  # the agent spoke with the debtor in person
    promise: bool = False  # counts as a promise to pay (amount and date)
    paid: bool = False  # the debtor says it is paid: stop calling at once
    # What happens to the record: done (never called again), retry (per the retry rules of
    # a connected call), callback (at callback_at), bad_number (drop the number dialled).
    then: Literal["done", "retry", "callback", "bad_number"] = "done"

    @model_validator(mode="after")
    def _needs_fit(self) -> DispositionSettings:
        if self.promise and not {"amount", "date"} <= set(self.needs):
            raise ValueError(f"disposition {self.code!r} is a promise: it needs amount and date")
        if self.then == "callback" and "callback_at" not in self.needs:
            raise ValueError(f"disposition {self.code!r} calls back: it needs callback_at")
        return self


class QueueSettings(_Section):
    name: Name
    language: Literal["en", "id"] = "en"
    greeting: list[Prompt] = Field(default_factory=list)
    moh_class: str = "default"
    # Position (and expected wait) said to each caller on their own channel this often; 0 = never.
    announce_every_seconds: float = Field(default=30.0, ge=0, le=3600)
    announce_position: bool = True
    announce_wait: bool = True
    # Higher first. Campaign queues made by the dialer use -1 to let inbound calls go first.
    priority: int = Field(default=0, ge=-9, le=9)
    # Every this many seconds of waiting raises a call's priority by one (0 = no aging).
    aging_seconds: float = Field(default=120.0, ge=0, le=86400)
    max_wait_seconds: float = Field(default=900.0, gt=0, le=86400)
    max_length: int = Field(default=100, ge=1, le=10000)
    overflow: OverflowSettings = OverflowSettings()
    service_level_seconds: float = Field(default=20.0, gt=0, le=3600)
    wrap_up_seconds: float = Field(default=10.0, ge=0, le=3600)
    ring_timeout_seconds: int = Field(default=15, ge=3, le=120)
    strategy: Literal["longest_idle", "fewest_calls", "best_skill", "round_robin"] = "longest_idle"
    needs: list[SkillNeedSettings] = Field(default_factory=list)
    relax: list[RelaxStepSettings] = Field(default_factory=list)
    # A digit that asks for a callback while waiting ("" = no callback offer while waiting).
    callback_key: Annotated[str, StringConstraints(pattern=r"^[0-9*#]?$")] = ""
    # Said to the agent's phone before the caller is connected (the queue's name, usually).
    whisper: list[Prompt] = Field(default_factory=list)
    # Handle time assumed before enough calls were measured, for the expected wait.
    default_handle_seconds: float = Field(default=180.0, gt=0, le=7200)
    # Ask the agent's phone to answer by itself (Call-Info answer-after=0 and Alert-Info
    # auto-answer): a dialer's live answer must reach an agent within its connect limit.
    auto_answer: bool = False
    # What agents record at the end of a call from this queue (the console's form); empty
    # accepts any code with a note, as before. Promises to pay need amount and date.
    dispositions: list[DispositionSettings] = Field(default_factory=list)

    @field_validator("dispositions")
    @classmethod
    def _queue_outcomes_only_record(cls, v: list[DispositionSettings]) -> list[DispositionSettings]:
        # A queue call's disposition is recorded (amount, date, callback time, right party);
        # nothing is scheduled or stopped from it. Refuse settings that promise otherwise.
        for d in v:
            if d.then != "done":
                raise ValueError(
                    f"disposition {d.code!r}: then = {d.then!r} acts on a dialer record; a "
                    "queue's dispositions are recorded only (leave then out, or use a campaign)"
                )
            if d.paid:
                raise ValueError(
                    f"disposition {d.code!r}: paid = true stops a campaign's calling; on a "
                    "queue it would do nothing (record payments with POST "
                    "/api/v1/accounts/<account>/paid)"
                )
        return v

    @field_validator("relax")
    @classmethod
    def _relax_sorted(cls, v: list[RelaxStepSettings]) -> list[RelaxStepSettings]:
        times = [r.after_seconds for r in v]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError("relax steps must have strictly increasing after_seconds")
        return v


class AgentSettings(_Section):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    endpoint: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    # Entered on the desk phone after a feature code (digits only, 4 to 8).
    pin: SecretStr
    skills: dict[Name, Level] = Field(default_factory=dict)
    queues: list[Name] = Field(default_factory=list)
    team: str = ""

    @field_validator("pin")
    @classmethod
    def _pin_digits(cls, v: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[0-9]{4,8}", v.get_secret_value()):
            raise ValueError("a PIN is 4 to 8 digits")
        return v


class CallbackRuleSettings(_Section):
    """Which caller ids a queue may call back, and when (``[acd.callbacks]``).

    A caller id is easy to spoof: without these rules a callback could be made to ring an
    agent and then dial a premium or international number. The window defaults to OJK POJK
    22/2023 (Monday to Saturday, 08:00-20:00 in the number's own zone, never on a holiday of
    ``calendar``), as the dialer's campaigns: a callback to a debtor is a collection call.
    """

    # Number types that may be called back (libphonenumber's types): a person's own line.
    phone_types: list[str] = Field(default_factory=lambda: list[str](DEFAULT_PHONE_TYPES))
    # Country prefixes ("+65") whose numbers may be called back; none: Indonesian (+62) only.
    international_prefixes: list[
        Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{0,5}$")]
    ] = Field(default_factory=list)
    max_per_number_per_day: int = Field(default=2, ge=1, le=10)
    calendar: Name = "id-national"
    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4, 5]
    )
    start: ClockTime = "08:00"
    end: ClockTime = "20:00"
    last_dial_margin_minutes: int = Field(default=5, ge=0, le=120)

    @field_validator("phone_types")
    @classmethod
    def _known_phone_types(cls, v: list[str]) -> list[str]:
        return known_phone_types(v, "no caller could be called back")

    @field_validator("international_prefixes")
    @classmethod
    def _foreign_prefixes(cls, v: list[str]) -> list[str]:
        for p in v:
            if p.startswith("+62"):
                raise ValueError(
                    f"international_prefixes: {p!r} is Indonesian (+62), always allowed; "
                    "list foreign country prefixes such as '+65'"
                )
        return v

    @model_validator(mode="after")
    def _window(self) -> CallbackRuleSettings:
        if self.start >= self.end:
            raise ValueError(f"callbacks: start {self.start} is not before end {self.end}")
        if not self.days:
            raise ValueError("callbacks: days is empty: no callback could ever be made")
        return self


class AcdSettings(_Section):
    # A caller who hangs up within this many seconds of joining is a short abandon.
    short_abandon_seconds: float = Field(default=5.0, ge=0, le=600)
    service_level_window_seconds: float = Field(default=3600.0, gt=0, le=86400)
    # Phone-initiated hold longer than this raises a reminder to the agent and supervisors.
    hold_reminder_seconds: float = Field(default=60.0, gt=0, le=3600)
    # A caller asked for a callback is dialled through this endpoint: <number>@<trunk>.
    callback_trunk: str = "customers"
    # Who may be called back and when; see CallbackRuleSettings.
    callbacks: CallbackRuleSettings = Field(default_factory=lambda: CallbackRuleSettings())
    queues: list[QueueSettings] = Field(default_factory=list)
    agents: list[AgentSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> AcdSettings:
        names = [q.name for q in self.queues]
        for i, q in enumerate(self.queues):
            if q.name in names[:i]:
                raise ValueError(f"queues[{i}].name {q.name!r} is used twice")
            if q.overflow.target is not None:
                if q.overflow.target not in names:
                    raise ValueError(
                        f"queues[{i}].overflow.target {q.overflow.target!r} is not a queue"
                    )
                if q.overflow.target == q.name:
                    raise ValueError(f"queues[{i}].overflow.target is the queue itself")
        seen_ids: set[str] = set()
        seen_eps: set[str] = set()
        for i, a in enumerate(self.agents):
            if a.id in seen_ids:
                raise ValueError(f"agents[{i}].id {a.id!r} is used twice")
            if a.endpoint in seen_eps:
                raise ValueError(f"agents[{i}].endpoint {a.endpoint!r} is used twice")
            seen_ids.add(a.id)
            seen_eps.add(a.endpoint)
            for qn in a.queues:
                if qn not in names:
                    raise ValueError(f"agents[{i}].queues names {qn!r}, which is not a queue")
        return self


RetryRule = Annotated[str, StringConstraints(pattern=r"^(never|next_day|now|[0-9]{1,5}[smhd])$")]
ZoneName = Literal["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
ATTEMPT_OUTCOMES = (
    "busy",
    "no_answer",
    "rejected",
    "congestion",
    "invalid_number",
    "failed",
    "machine",
    "abandoned",
    "connected",
    "reminder",
    "cancelled",
)


def _default_retry() -> dict[str, str]:
    # Why these: a busy line is often free again soon; an unanswered phone is better tried
    # an hour later than hammered; congestion is the network, not the debtor; a machine means
    # the debtor is not reachable on this number today; an invalid number never becomes
    # valid by waiting. Connected and reminder calls are decided by their disposition.
    return {
        "busy": "15m",
        "no_answer": "60m",
        "rejected": "4h",
        "congestion": "5m",
        "invalid_number": "never",
        "failed": "30m",
        "machine": "next_day",
        "abandoned": "60m",
        "connected": "never",
        "reminder": "never",
        "cancelled": "now",
    }


class BucketSettings(_Section):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+_-]{1,20}$")]
    min_days: int = Field(ge=0, le=100000)
    max_days: int | None = Field(default=None, ge=0, le=100000)


def _default_buckets() -> list[BucketSettings]:
    return [
        BucketSettings(name="current", min_days=0, max_days=0),
        BucketSettings(name="1-30", min_days=1, max_days=30),
        BucketSettings(name="31-60", min_days=31, max_days=60),
        BucketSettings(name="61-90", min_days=61, max_days=90),
        BucketSettings(name="90+", min_days=91, max_days=None),
    ]


def _default_dispositions() -> list[DispositionSettings]:
    d = DispositionSettings
    return [
        d(
            code="ptp",
            label="Promise to pay",
            needs=["amount", "date"],
            right_party=True,
            promise=True,
            then="done",
        ),
        d(code="paid", label="Already paid", right_party=True, paid=True, then="done"),
        d(code="refused", label="Refused to pay", right_party=True, then="retry"),
        d(code="hardship", label="Hardship", right_party=True, then="done"),
        d(code="callback", label="Call back", needs=["callback_at"], then="callback"),
        d(code="wrong_party", label="Wrong party", then="bad_number"),
        d(code="no_contact", label="No contact (third party)", then="retry"),
    ]


class CampaignSettings(_Section):
    name: Name
    mode: Literal["preview", "progressive", "predictive", "reminder"] = "progressive"
    # Who works it: these agents, plus every agent with ``skill`` at ``min_level`` or above.
    agents: list[str] = Field(default_factory=list)
    skill: Name | None = None
    min_level: Level = 1
    trunk: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "customers"
    caller_id: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{3,16}$")]
    max_lines: int = Field(default=10, ge=1, le=500)
    # Abandoned live answers over live answers, planned against over the rolling window.
    abandon_cap: float = Field(default=0.03, ge=0, le=0.2)
    abandon_window_hours: float = Field(default=24.0, ge=1, le=720)
    # A live answer gets an agent within this long, or hears the safe-harbour message.
    connect_limit_seconds: float = Field(default=2.0, ge=0.5, le=30)
    safe_harbour: list[Prompt] = Field(
        default_factory=lambda: ["sound:sambung/dialer-safe-harbour"]
    )
    machine_message: list[Prompt] = Field(default_factory=list)
    amd: bool = True
    ring_seconds: int = Field(default=25, ge=5, le=90)
    wrap_up_seconds: float = Field(default=15.0, ge=0, le=3600)
    blend: Literal["inbound_first", "equal", "outbound_first"] = "inbound_first"
    moh_class: str = "default"
    whisper: list[Prompt] = Field(default_factory=list)
    auto_answer: bool = True
    # Calling window, in the debtor's local time (OJK POJK 22/2023: Monday to Saturday,
    # 08:00-20:00, not on national holidays).
    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4, 5]
    )
    start: ClockTime = "08:00"
    end: ClockTime = "20:00"
    last_dial_margin_minutes: int = Field(default=5, ge=0, le=120)
    # The holiday calendar (a name from [calendars]); a day it does not cover is never called.
    calendar: Name = "id-national"
    holidays: list[Path] | None = None  # replaced by `calendar`; refused with a pointer
    max_attempts_per_day: int = Field(default=3, ge=1, le=50)
    max_attempts_per_7_days: int = Field(default=10, ge=1, le=200)
    max_attempts: int = Field(default=30, ge=1, le=1000)
    retry: dict[str, RetryRule] = Field(default_factory=_default_retry)
    default_zone: ZoneName = "Asia/Jakarta"
    default_language: Literal["id", "en"] = "id"
    buckets: list[BucketSettings] = Field(default_factory=_default_buckets)
    dispositions: list[DispositionSettings] = Field(default_factory=_default_dispositions)
    # Agentless reminders: said after the amount due; the key connects to an agent.
    reminder_key: Annotated[str, StringConstraints(pattern=r"^[0-9]?$")] = "1"
    reminder_wait_seconds: float = Field(default=6.0, ge=1, le=60)
    # The debtor number types this campaign dials (libphonenumber's types); a number of any
    # other type is left out at import and reported.
    phone_types: list[str] = Field(default_factory=lambda: list[str](DEFAULT_PHONE_TYPES))

    @field_validator("retry")
    @classmethod
    def _known_outcomes(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(ATTEMPT_OUTCOMES))
        if unknown:
            raise ValueError(
                f"retry names unknown outcomes {unknown}; outcomes: {', '.join(ATTEMPT_OUTCOMES)}"
            )
        return {**_default_retry(), **v}

    @field_validator("phone_types")
    @classmethod
    def _known_phone_types(cls, v: list[str]) -> list[str]:
        return known_phone_types(v, "the campaign could dial no number")

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSettings:
        if self.start >= self.end:
            raise ValueError(f"campaign {self.name!r}: start {self.start} is not before end")
        if self.max_attempts_per_day > self.max_attempts_per_7_days:
            raise ValueError("max_attempts_per_day is more than max_attempts_per_7_days")
        codes = [d.code for d in self.dispositions]
        if len(set(codes)) != len(codes):
            raise ValueError(f"campaign {self.name!r}: a disposition code is used twice")
        if self.mode != "reminder" and not self.agents and self.skill is None:
            raise ValueError(f"campaign {self.name!r} needs agents or a skill")
        if self.holidays is not None:
            raise ValueError(
                f'campaign {self.name!r}: holiday files are replaced by calendar = "<name>" '
                "naming a [calendars.<name>] section (the holidays package plus override files)"
            )
        return self


class DialerSettings(_Section):
    campaigns: list[CampaignSettings] = Field(default_factory=list)
    # Do-not-call files (one number per line); applied at import and before every dial.
    dnc_files: list[Path] = Field(default_factory=list)
    tick_seconds: float = Field(default=1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _unique(self) -> DialerSettings:
        names = [c.name for c in self.campaigns]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise ValueError(f"campaigns[{i}].name {n!r} is used twice")
        return self


# ---- recordings and supervisor monitoring (issue 7) ------------------------------------------
PjsipEndpoint = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class RecordingScopeSettings(_Section):
    """A queue's or a campaign's own recording rules; unset keys take the defaults."""

    policy: Literal["all", "none", "on_demand"] | None = None
    retention_days: int | None = Field(default=None, ge=0, le=36500)
    announcement: list[Prompt] | None = None


class AuthSettings(_Section):
    """Logins for the web console and the API (users are kept in PostgreSQL)."""

    # A session ends this long after login whatever happens (about one shift) ...
    session_hours: float = Field(default=12.0, gt=0, le=168)
    # ... or after this long without a request (a screen left open keeps it alive).
    idle_minutes: float = Field(default=120.0, gt=0, le=1440)
    # Failed logins allowed per username and address, and per address over all usernames,
    # within the window; more are refused with 429 until the oldest leaves the window.
    login_failures_per_user: int = Field(default=5, ge=1, le=100)
    login_failures_per_address: int = Field(default=30, ge=1, le=10_000)
    login_window_minutes: float = Field(default=15.0, gt=0, le=1440)
    # Set behind TLS: the browser then sends the session cookie over HTTPS only.
    cookie_secure: bool = False


class ConsoleSettings(_Section):
    """The agent console and supervisor wallboard web pages."""

    enabled: bool = True
    # What an agent may pick when pausing (the first is the default); kept short because
    # reports group by it.
    pause_reasons: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")]] = Field(
        default_factory=lambda: ["break", "lunch", "training", "meeting", "coaching", "admin"],
        min_length=1,
    )
    # How often the wallboard's figures are pushed to open screens.
    wallboard_refresh_seconds: float = Field(default=1.0, ge=0.2, le=60)


class RecordingSettings(_Section):
    # Finished recordings move here from Asterisk's spool (a local directory store).
    store_dir: Path = Path("var/recordings")
    # all: every agent-connected call; none: never; on_demand: when asked through the API.
    policy: Literal["all", "none", "on_demand"] = "all"
    # Recordings older than this are deleted by the retention job (0 keeps them for ever).
    retention_days: int = Field(default=90, ge=0, le=36500)
    # Said to the caller before the recording starts (empty: no announcement).
    announcement: list[Prompt] = Field(default_factory=list)
    queues: dict[Name, RecordingScopeSettings] = Field(default_factory=dict)
    campaigns: dict[Name, RecordingScopeSettings] = Field(default_factory=dict)
    retention_interval_seconds: float = Field(default=3600.0, gt=0, le=86400)
    # A supervisor's own desk phone (PJSIP endpoint), by the name of their role token.
    supervisor_phones: dict[str, PjsipEndpoint] = Field(default_factory=dict)
    monitor_ring_seconds: int = Field(default=20, ge=3, le=120)


CalendarCategory = Literal["public", "government"]


def _public_only() -> list[CalendarCategory]:
    return ["public"]


class CalendarSettings(_Section):
    """A holiday calendar: the ``holidays`` package's country calendar plus override files."""

    # false: the days come from the override files alone and the covered years are their
    # `covers` plus `years` (a centre that keeps its own calendar vouches for what it lists).
    package: bool = True
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "ID"
    # "public": national holidays; "government" adds Indonesia's cuti bersama (collective
    # leave), for a centre that closes on those days too.
    categories: list[CalendarCategory] = Field(default_factory=_public_only)
    # Changes the government made after publication: add, move or drop a date, with a source.
    overrides: list[Path] = Field(default_factory=list)
    # Only these years count as covered (a centre that signs off each year's calendar).
    years: list[Annotated[int, Field(ge=1900, le=2200)]] | None = None
    # For IVR business hours on a day the calendar does not cover: "closed" (fail closed, as
    # the dialer always does) or "open". The dialer never calls on an unknown day.
    unknown_days: Literal["closed", "open"] = "closed"

    @field_validator("country")
    @classmethod
    def _known_country(cls, v: str) -> str:
        import holidays

        if v not in holidays.list_supported_countries():
            raise ValueError(f"{v!r} is not a country the holidays package knows")
        return v


def _default_calendars() -> dict[str, CalendarSettings]:
    return {"id-national": CalendarSettings()}


class Settings(_Section):
    # Holiday calendars by name; "id-national" (Indonesia's national holidays) always exists.
    calendars: dict[Name, CalendarSettings] = Field(default_factory=_default_calendars)
    engine: EngineSettings = EngineSettings()
    http: HttpSettings = HttpSettings()
    database: DatabaseSettings = DatabaseSettings()
    ari: AriSettings = AriSettings()
    ami: AmiSettings = AmiSettings()
    calls: CallSettings = CallSettings()
    ivr: IvrSettings = IvrSettings()
    acd: AcdSettings = AcdSettings()
    dialer: DialerSettings = DialerSettings()
    recordings: RecordingSettings = RecordingSettings()
    auth: AuthSettings = AuthSettings()
    console: ConsoleSettings = ConsoleSettings()
    hotlines: list[HotlineSettings] = Field(default_factory=list)
    # Where the settings came from; relative paths inside are resolved against its folder.
    source: Path | None = None

    @model_validator(mode="after")
    def _unique_dids(self) -> Settings:
        seen: dict[str, int] = {}
        for i, h in enumerate(self.hotlines):
            if h.did in seen:
                raise ValueError(
                    f"hotlines[{i}].did {h.did!r} is already used by hotlines[{seen[h.did]}]"
                )
            seen[h.did] = i
        queues = {q.name for q in self.acd.queues}
        for i, h in enumerate(self.hotlines):
            if h.queue is not None and h.queue not in queues:
                raise ValueError(f"hotlines[{i}].queue {h.queue!r} is not a queue in [acd]")
        agent_ids = {a.id for a in self.acd.agents}
        for i, c in enumerate(self.dialer.campaigns):
            for a in c.agents:
                if a not in agent_ids:
                    raise ValueError(f"dialer.campaigns[{i}].agents names {a!r}, not an agent")
            if f"dialer-{c.name}" in queues:
                raise ValueError(f"dialer.campaigns[{i}]: queue 'dialer-{c.name}' is taken")
        return self

    @field_validator("calendars")
    @classmethod
    def _national_calendar(cls, v: dict[str, CalendarSettings]) -> dict[str, CalendarSettings]:
        return {**_default_calendars(), **v}

    @model_validator(mode="after")
    def _calendars_exist(self) -> Settings:
        for i, c in enumerate(self.dialer.campaigns):
            if c.calendar not in self.calendars:
                raise ValueError(
                    f"dialer.campaigns[{i}].calendar {c.calendar!r} is not a calendar; "
                    f"calendars: {', '.join(sorted(self.calendars))}"
                )
        if self.acd.callbacks.calendar not in self.calendars:
            raise ValueError(
                f"acd.callbacks.calendar {self.acd.callbacks.calendar!r} is not a calendar; "
                f"calendars: {', '.join(sorted(self.calendars))}"
            )
        return self

    @model_validator(mode="after")
    def _recording_scopes_exist(self) -> Settings:
        queues = {q.name for q in self.acd.queues}
        for name in self.recordings.queues:
            if name not in queues:
                raise ValueError(f"recordings.queues names {name!r}, which is not a queue")
        campaigns = {c.name for c in self.dialer.campaigns}
        for name in self.recordings.campaigns:
            if name not in campaigns:
                raise ValueError(f"recordings.campaigns names {name!r}, which is not a campaign")
        return self

    def hotline_for(self, did: str) -> HotlineSettings | None:
        for h in self.hotlines:
            if h.did == did:
                return h
        return None


ENV_PREFIX = "SAMBUNG_"


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        out.setdefault(section, {})[key] = value
    if "DATABASE_URL" in env:
        out.setdefault("database", {})["url"] = env["DATABASE_URL"]
    if env.get("SAMBUNG_API_TOKEN"):
        out.setdefault("http", {}).setdefault("_extra_token", env["SAMBUNG_API_TOKEN"])
    if env.get("SAMBUNG_METRICS_TOKEN"):
        out.setdefault("http", {})["_metrics_token"] = env["SAMBUNG_METRICS_TOKEN"]
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def load_settings(path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """Read settings; raise ConfigError naming the file, the key and what was expected."""
    env = os.environ if env is None else env
    source = str(path) if path is not None else "(defaults)"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise ConfigError(source, "(file)", f"a readable file ({err.strerror})") from err
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise ConfigError(source, "(file)", "UTF-8 text") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(source, "(syntax)", f"valid TOML ({err})") from err
    overrides = _env_overrides(env)
    extra_token = overrides.get("http", {}).pop("_extra_token", None)
    metrics_token = overrides.get("http", {}).pop("_metrics_token", None)
    data = _merge(data, overrides)
    if extra_token:
        http = data.setdefault("http", {})
        http["api_tokens"] = [*http.get("api_tokens", []), extra_token]
    if metrics_token:
        http = data.setdefault("http", {})
        scraper = {"name": "prometheus", "token": metrics_token, "role": "metrics"}
        http["role_tokens"] = [*http.get("role_tokens", []), scraper]
    try:
        settings = Settings.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = _loc(first["loc"])
        got = first.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f", got {got!r}"
        if any(s in key for s in ("password", "secret", "token", "url")):
            shown = ""  # never echo secrets back into a terminal or a log
        origin = source
        top = str(first["loc"][0]) if first["loc"] else ""
        env_key = f"{ENV_PREFIX}{top.upper()}__" if top else ""
        if env_key and any(k.startswith(env_key) for k in env):
            origin = f"{source} (or environment {env_key}*)"
        raise ConfigError(origin, key, f"{first['msg']}{shown}") from err
    base = path.resolve().parent if path is not None else Path.cwd()
    flows = [p if p.is_absolute() else base / p for p in settings.ivr.flows]
    ivr = settings.ivr.model_copy(update={"flows": flows})

    def rel(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    dialer = settings.dialer.model_copy(
        update={"dnc_files": [rel(p) for p in settings.dialer.dnc_files]}
    )
    calendars = {
        n: c.model_copy(update={"overrides": [rel(p) for p in c.overrides]})
        for n, c in settings.calendars.items()
    }
    return settings.model_copy(
        update={"ivr": ivr, "dialer": dialer, "calendars": calendars, "source": path}
    )
