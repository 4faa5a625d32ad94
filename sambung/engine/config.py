"""Typed settings: defaults, then a TOML file, then the environment. Loaded once, passed in.

Why pydantic: the settings are nested, typed and validated with precise error locations, which
is exactly what turns a bad file into "file, key, what was expected". Domain modules never
import this module; the composition root hands each part only the values it needs.
``load_settings`` reports every problem of the file and the environment at once
(:class:`SettingsInvalid`), each naming where the value came from, the key and what was
expected.

Environment overrides use ``SAMBUNG_<SECTION>__<KEY>`` (for example
``SAMBUNG_ARI__PASSWORD``; deeper keys add parts, ``SAMBUNG_ACD__CALLBACKS__START``); a list
or a table is given as JSON (``SAMBUNG_HTTP__ALLOWED_ORIGINS='["https://a", "https://b"]'``).
``DATABASE_URL`` is honoured as the conventional name for the database URL,
``SAMBUNG_API_TOKEN`` adds an API token without writing it into a file, and
``SAMBUNG_METRICS_TOKEN`` a token named ``prometheus`` that may only read /metrics. For each of
these, ``NAME_FILE`` names a file holding the value (Docker secrets, systemd credentials).

The reference, ``docs/configuration.md``, is generated from the models here by
``python -m sambung.engine.config_doc``: a key's ``description=`` or the comment above it is
its text.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tomllib
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

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

from sambung.dialer.phones import DEFAULT_PHONE_TYPES, PHONE_TYPES
from sambung.engine.errors import ConfigError, SambungError


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


# How long before its lease lapses an active engine stops acting (engine/lease.py LeaseTimes).
LEASE_MARGIN_SECONDS = 0.5


class EngineSettings(_Section):
    instance_id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] = Field(
        default="sambung-1",
        description=(
            "This engine's name: in logs, metrics, the lease and its spool file's name; distinct "
            "for each engine of a hot-standby pair."
        ),
    )
    log_format: Literal["console", "json"] = Field(
        default="console",
        description=(
            "console: key-value lines for a terminal; json: one JSON object per line, for a log "
            "collector."
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="The lowest level logged."
    )
    drain_timeout_seconds: float = Field(
        default=15.0,
        ge=0,
        le=3600,
        description=(
            "On a graceful stop, how long calls in progress may go on before the engine hangs up "
            "who is left."
        ),
    )
    spool_dir: Path = Field(
        default=Path("var/spool"),
        description=(
            "Folder of the write-ahead spool (facts-<instance_id>.jsonl): facts wait here while "
            "PostgreSQL is slow or down, so none is lost."
        ),
    )
    # What a graceful stop (SIGTERM) does with callers waiting in queues. "handover": leave
    # them waiting in Asterisk, their entries and calls open, for the next engine to take over
    # (a deploy drops nobody); "drain": as other calls, let them be served for
    # drain_timeout_seconds, then hang up who is left.
    on_stop: Literal["handover", "drain"] = "handover"
    # Hot standby (engine/lease.py). With lease = true, two or more engines run with the same
    # settings and distinct instance ids; the one holding the lease in PostgreSQL drives
    # Asterisk, the others wait warm and take over when it lapses. The price: an active
    # engine cut off from PostgreSQL for lease_ttl_seconds stops acting, since it can no
    # longer tell whether a standby has taken over. Off (one engine): PostgreSQL may be down
    # at start and calls are still taken.
    lease: bool = False
    lease_ttl_seconds: float = Field(
        default=6.0,
        ge=1.0,
        le=120.0,
        description=(
            "With lease = true: how long a lease lasts without renewal; a standby takes over once "
            "it lapses. At least twice lease_renew_seconds plus 0.5 s."
        ),
    )
    lease_renew_seconds: float = Field(
        default=2.0,
        ge=0.2,
        le=60.0,
        description="With lease = true: how often the active engine renews its lease.",
    )

    @model_validator(mode="after")
    def _lease_fits(self) -> EngineSettings:
        # Two renewals and the half-second margin must fit in a lease: one lost renewal must
        # never fence a healthy engine.
        if self.lease_renew_seconds * 2 > self.lease_ttl_seconds - LEASE_MARGIN_SECONDS:
            raise ValueError(
                f"lease_ttl_seconds ({self.lease_ttl_seconds}) must be at least twice "
                f"lease_renew_seconds ({self.lease_renew_seconds}) plus "
                f"{LEASE_MARGIN_SECONDS} s"
            )
        return self


class RoleTokenSettings(_Section):
    """A named API token with a role. An agent's token is named by the agent's id: agents may
    only act on their own calls. ``metrics`` may read /metrics and nothing else (give it to
    Prometheus). ``api_tokens`` (no name) have the admin role."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")] = Field(
        description="Who holds the token: an agent's id for role agent, any name otherwise."
    )
    token: SecretStr = Field(description="The bearer token, at least 16 characters.")
    role: Literal["agent", "supervisor", "admin", "metrics"] = Field(
        description=(
            "agent: only the agent's own calls; supervisor; admin; metrics: /metrics and nothing "
            "else."
        )
    )


# scheme://host[:port], as a browser sends it in Origin (no path, no trailing slash).
Origin = Annotated[str, StringConstraints(pattern=r"^https?://[A-Za-z0-9.\-\[\]:]+$")]


class HttpSettings(_Section):
    host: str = Field(
        default="127.0.0.1",
        description=(
            "Address the HTTP API, console and /metrics listen on; anything beyond loopback "
            "requires strong, non-default credentials."
        ),
    )
    # 0 picks a free port (tests, side-by-side benchmarks); the bound port is logged at start.
    port: int = Field(default=8480, ge=0, le=65535)
    api_tokens: list[SecretStr] = Field(
        default_factory=list,
        description=(
            "Bearer tokens with the admin role, at least 16 characters each (SAMBUNG_API_TOKEN "
            "adds one)."
        ),
    )
    role_tokens: list[RoleTokenSettings] = Field(default_factory=list)
    # Web pages served from elsewhere that may open the engine's WebSockets; a page from the
    # engine's own host (as the browser reached it) always may.
    allowed_origins: list[Origin] = Field(default_factory=list)
    # Reverse proxies (IP addresses or CIDR blocks) whose X-Forwarded-For names the client for
    # the login limits and the audit. Empty: the header is never believed, since any client
    # can send it.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, v: list[str]) -> list[str]:
        for i, p in enumerate(v):
            try:
                ipaddress.ip_network(p.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies[{i}] {p!r} is not an IP address or a CIDR block"
                ) from None
        return v

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
    url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/sambung"),
        description=(
            "PostgreSQL connection URL (postgresql://user:password@host:port/name); DATABASE_URL "
            "overrides it."
        ),
    )
    pool_min: int = Field(
        default=1,
        ge=1,
        le=100,
        description=(
            "Accepted but not used: the pool starts empty and opens connections as needed, so the "
            "engine starts while PostgreSQL is down."
        ),
    )
    pool_max: int = Field(default=10, ge=1, le=100, description="Most connections the pool opens.")
    retry_max_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description=(
            "Longest wait between attempts to write spooled facts while PostgreSQL is down (the "
            "wait doubles from a short start up to this)."
        ),
    )

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, v: SecretStr) -> SecretStr:
        if not re.match(r"^postgres(ql)?://", v.get_secret_value()):
            raise ValueError("expected a URL starting with postgresql://")
        return v


class AriSettings(_Section):
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^/]+$")] = Field(
        default="http://127.0.0.1:8088",
        description="Asterisk's HTTP server (ARI), scheme://host:port without a path.",
    )
    username: str = Field(default="sambung", description="ARI user (ari.conf).")
    password: SecretStr = Field(
        default=SecretStr("sambung-dev-secret"), description="ARI password (ari.conf)."
    )
    app: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,73}$")] = Field(
        default="sambung",
        description="Stasis application name the engine registers; the dialplan sends calls to it.",
    )
    heartbeat_seconds: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description=(
            "Ping interval on the ARI event WebSocket; a connection that stops answering is "
            "dropped and opened again."
        ),
    )
    backoff_initial_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description=(
            "First wait before reconnecting to ARI after a loss; doubles (with jitter) on each "
            "failure."
        ),
    )
    backoff_max_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Longest wait between ARI reconnection attempts."
    )
    request_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Time limit of one ARI REST request."
    )


class AmiSettings(_Section):
    enabled: bool = Field(
        default=True,
        description=(
            "Connect to the Asterisk Manager Interface (for what ARI lacks); false runs without it."
        ),
    )
    host: str = Field(default="127.0.0.1", description="AMI address.")
    port: int = Field(default=5038, ge=1, le=65535, description="AMI port.")
    username: str = Field(default="sambung", description="AMI user (manager.conf).")
    secret: SecretStr = Field(
        default=SecretStr("sambung-dev-ami-secret"),
        description="AMI secret (manager.conf); must differ from ari.password.",
    )
    ping_interval_seconds: float = Field(
        default=5.0, gt=0, le=300, description="How often the AMI connection is pinged."
    )
    ping_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        le=60,
        description="A ping unanswered for this long drops the AMI connection, to be opened again.",
    )


class HotlineSettings(_Section):
    did: Digits = Field(description="The dialled number (2 to 20 digits) this hotline answers.")
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)] = Field(
        description="Name shown in reports and on screens."
    )
    language: Literal["en", "id"] = Field(default="en", description="Language of the prompts.")
    greeting: list[Prompt] = Field(
        default_factory=list,
        description="Prompts played before hanging up, for a hotline without a queue.",
    )
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
        default_factory=lambda: ["sound:sambung/unknown-number"],
        description=(
            "Prompts played to a call to a number no hotline or flow answers, before hanging up."
        ),
    )
    # A call that gets no event at all for this long is presumed stuck and hung up.
    max_silent_seconds: float = Field(default=300.0, gt=0)


class IvrSettings(_Section):
    # Flow files (YAML). Relative paths are taken from the settings file's folder.
    flows: list[Path] = Field(default_factory=list)
    max_menu_depth: int = Field(
        default=4,
        ge=1,
        le=20,
        description="Deepest nesting of menus a flow may have; deeper flows are refused.",
    )
    # Queues a transfer node may name. The ACD will own this list; until then it is declared.
    queues: list[str] = Field(default_factory=list)
    # Asterisk's sounds folder as this machine sees it, to check that every prompt a flow
    # names exists; unset skips the check (the engine runs on another host than Asterisk).
    sounds_root: Path | None = None
    # Digits callers entered (account numbers...) are blanked in ivr_steps after this many
    # days, and the IVR sessions' attributes cleared but for language and did, by a job at
    # start and daily; 0 keeps them for ever.
    digits_retention_days: int = Field(default=90, ge=0, le=3650)


class SkillNeedSettings(_Section):
    skill: Name = Field(description="Skill name.")
    min_level: Level = Field(
        default=1, description="Lowest level (1 to 5) of the skill an agent needs."
    )


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
    code: Name = Field(description="Code stored with the call.")
    label: Annotated[str, StringConstraints(min_length=1, max_length=80)] = Field(
        description="Label shown on the agent's form."
    )
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
    name: Name = Field(description="Queue name, used by flows, hotlines, agents and reports.")
    language: Literal["en", "id"] = Field(
        default="en", description="Language of the queue's prompts."
    )
    greeting: list[Prompt] = Field(
        default_factory=list, description="Prompts played to a caller on joining."
    )
    moh_class: str = Field(
        default="default", description="Asterisk music-on-hold class played while waiting."
    )
    # Position (and expected wait) said to each caller on their own channel this often; 0 = never.
    announce_every_seconds: float = Field(default=30.0, ge=0, le=3600)
    announce_position: bool = Field(
        default=True, description="Say the caller's position in the announcements."
    )
    announce_wait: bool = Field(
        default=True, description="Say the expected wait in the announcements."
    )
    # Higher first. Campaign queues made by the dialer use -1 to let inbound calls go first.
    priority: int = Field(default=0, ge=-9, le=9)
    # Every this many seconds of waiting raises a call's priority by one (0 = no aging).
    aging_seconds: float = Field(default=120.0, ge=0, le=86400)
    max_wait_seconds: float = Field(
        default=900.0,
        gt=0,
        le=86400,
        description="A caller who has waited this long goes to the overflow.",
    )
    max_length: int = Field(
        default=100,
        ge=1,
        le=10000,
        description="Callers waiting at most; one more goes to the overflow on arrival.",
    )
    overflow: OverflowSettings = OverflowSettings()
    service_level_seconds: float = Field(
        default=20.0,
        gt=0,
        le=3600,
        description="Target answer time: calls answered within it count towards the service level.",
    )
    wrap_up_seconds: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="Time an agent gets after a call before the next offer.",
    )
    ring_timeout_seconds: int = Field(
        default=15,
        ge=3,
        le=120,
        description=(
            "How long an agent's phone rings before the offer counts as not answered (RONA) and "
            "goes to another agent."
        ),
    )
    strategy: Literal["longest_idle", "fewest_calls", "best_skill", "round_robin"] = Field(
        default="longest_idle",
        description=(
            "Which eligible agent gets the call: longest idle, fewest calls taken, best skill "
            "level, or in turn."
        ),
    )
    needs: list[SkillNeedSettings] = Field(
        default_factory=list, description="Skills an agent must have to take this queue's calls."
    )
    relax: list[RelaxStepSettings] = Field(
        default_factory=list,
        description="Steps that replace needs as a call waits longer, in increasing after_seconds.",
    )
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
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")] = Field(
        description="Agent id, used by logins, role tokens and campaigns."
    )
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)] = Field(
        description="Name shown on screens and in reports."
    )
    endpoint: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = Field(
        description="The agent's desk phone (PJSIP endpoint); each agent has their own."
    )
    # Entered on the desk phone after a feature code (digits only, 4 to 8).
    pin: SecretStr
    skills: dict[Name, Level] = Field(
        default_factory=dict, description="Skill name to level (1 to 5)."
    )
    queues: list[Name] = Field(
        default_factory=list, description="Queues the agent takes calls from."
    )
    team: str = Field(default="", description="Team name, for the wallboard and reports.")

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
    max_per_number_per_day: int = Field(
        default=2, ge=1, le=10, description="Callbacks to one number per day at most."
    )
    calendar: Name = Field(
        default="id-national",
        description="Holiday calendar (a name from [calendars]); no callback on its holidays.",
    )
    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4, 5],
        description="Weekdays callbacks may be made, 0 = Monday to 6 = Sunday.",
    )
    start: ClockTime = Field(
        default="08:00",
        description="Earliest time of day (HH:MM, the number's own zone) for a callback.",
    )
    end: ClockTime = Field(
        default="20:00",
        description="Time of day (HH:MM, the number's own zone) by which callbacks stop.",
    )
    last_dial_margin_minutes: int = Field(
        default=5, ge=0, le=120, description="No callback dialled within this many minutes of end."
    )

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
    service_level_window_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=86400,
        description="The service level is computed over the calls of this last stretch of time.",
    )
    # Phone-initiated hold longer than this raises a reminder to the agent and supervisors.
    hold_reminder_seconds: float = Field(default=60.0, gt=0, le=3600)
    # A caller asked for a callback is dialled through this endpoint: <number>@<trunk>.
    callback_trunk: str = "customers"
    # A waiting caller whom no engine drives (the engine crashed, or stopped and none came
    # back) is released by Asterisk after this long with the engine-down message (cause 34).
    # Another engine must take the call over within it: at least two thirds of it after a
    # crash, all of it after a graceful hand-over.
    adopt_within_seconds: float = Field(default=120.0, ge=5, le=3600)
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
    "lost",
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
        # Lost by the engine or Asterisk (a restart): like an abandon, the debtor may have
        # answered and heard nobody, so not at once.
        "lost": "60m",
    }


class BucketSettings(_Section):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+_-]{1,20}$")] = Field(
        description="Bucket name, as reports show it."
    )
    min_days: int = Field(ge=0, le=100000, description="Fewest days past due in this bucket.")
    max_days: int | None = Field(
        default=None,
        ge=0,
        le=100000,
        description="Most days past due in this bucket; unset: no upper bound.",
    )


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
    name: Name = Field(description="Campaign name; its calls wait in queue dialer-<name>.")
    mode: Literal["preview", "progressive", "predictive", "reminder"] = Field(
        default="progressive",
        description=(
            "preview: the agent sees the record and starts the call; progressive: one line per "
            "free agent; predictive: the pacer dials ahead within abandon_cap; reminder: a "
            "message without an agent, the key connects to one."
        ),
    )
    # Who works it: these agents, plus every agent with ``skill`` at ``min_level`` or above.
    agents: list[str] = Field(default_factory=list)
    skill: Name | None = Field(
        default=None,
        description="Agents with this skill (at min_level or above) work the campaign too.",
    )
    min_level: Level = Field(default=1, description="Lowest level of skill that counts.")
    trunk: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = Field(
        default="customers",
        description="PJSIP endpoint the calls go out through (<number>@<trunk>).",
    )
    caller_id: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{3,16}$")] = Field(
        description="Number shown to the called party."
    )
    max_lines: int = Field(
        default=10, ge=1, le=500, description="Lines dialling or ringing at once at most."
    )
    # Abandoned live answers over live answers, planned against over the rolling window.
    abandon_cap: float = Field(default=0.03, ge=0, le=0.2)
    abandon_window_hours: float = Field(
        default=24.0, ge=1, le=720, description="Rolling window over which abandon_cap is measured."
    )
    # Live answers in the window before the pacer's closed loop steers (until then its gain
    # stays fixed and only its guards move).
    pacing_warmup_live: int = Field(default=100, ge=1, le=100000)
    # A live answer gets an agent within this long, or hears the safe-harbour message.
    connect_limit_seconds: float = Field(default=2.0, ge=0.5, le=30)
    safe_harbour: list[Prompt] = Field(
        default_factory=lambda: ["sound:sambung/dialer-safe-harbour"],
        description=(
            "Prompts played to a live answer no agent took within connect_limit_seconds, before "
            "hanging up."
        ),
    )
    machine_message: list[Prompt] = Field(
        default_factory=list,
        description="Prompts left on an answering machine (empty: hang up on a machine).",
    )
    amd: bool = Field(default=True, description="Detect answering machines on answer.")
    ring_seconds: int = Field(
        default=25,
        ge=5,
        le=90,
        description="How long a debtor's phone rings before the attempt is no_answer.",
    )
    wrap_up_seconds: float = Field(
        default=15.0,
        ge=0,
        le=3600,
        description="Time an agent gets after a campaign call before the next.",
    )
    blend: Literal["inbound_first", "equal", "outbound_first"] = Field(
        default="inbound_first",
        description="How the campaign's calls rank against inbound calls for the same agents.",
    )
    moh_class: str = Field(
        default="default",
        description="Asterisk music-on-hold class for a live answer waiting for an agent.",
    )
    whisper: list[Prompt] = Field(
        default_factory=list,
        description="Prompts said to the agent's phone before the debtor is connected.",
    )
    auto_answer: bool = Field(
        default=True,
        description=(
            "Ask agents' phones to answer by themselves, so a live answer reaches an agent within "
            "connect_limit_seconds."
        ),
    )
    # Calling window, in the debtor's local time (OJK POJK 22/2023: Monday to Saturday,
    # 08:00-20:00, not on national holidays).
    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4, 5]
    )
    start: ClockTime = Field(
        default="08:00", description="Earliest time of day (HH:MM, debtor's local time) to call."
    )
    end: ClockTime = Field(
        default="20:00",
        description="Time of day (HH:MM, debtor's local time) by which calling stops.",
    )
    last_dial_margin_minutes: int = Field(
        default=5, ge=0, le=120, description="No call dialled within this many minutes of end."
    )
    # The holiday calendar (a name from [calendars]); a day it does not cover is never called.
    calendar: Name = "id-national"
    holidays: list[Path] | None = None  # replaced by `calendar`; refused with a pointer
    max_attempts_per_day: int = Field(
        default=3, ge=1, le=50, description="Attempts per debtor per day at most."
    )
    max_attempts_per_7_days: int = Field(
        default=10, ge=1, le=200, description="Attempts per debtor over any 7 days at most."
    )
    max_attempts: int = Field(
        default=30,
        ge=1,
        le=1000,
        description=(
            "Attempts per record in all: a record that has had them is closed as exhausted "
            "and not dialled again (max_attempts_per_day and max_attempts_per_7_days apply "
            "per debtor on top)."
        ),
    )
    retry: dict[str, RetryRule] = Field(
        default_factory=_default_retry,
        description=(
            "When to try again after each attempt outcome: never, next_day, now, or a delay such "
            "as 15m, 4h, 1d; outcomes not named keep their defaults."
        ),
    )
    default_zone: ZoneName = Field(
        default="Asia/Jakarta",
        description="Time zone of a debtor whose record names none, for the calling window.",
    )
    default_language: Literal["id", "en"] = Field(
        default="id", description="Language of a debtor whose record names none."
    )
    buckets: list[BucketSettings] = Field(
        default_factory=_default_buckets,
        description="Days-past-due buckets records are sorted into.",
    )
    dispositions: list[DispositionSettings] = Field(
        default_factory=_default_dispositions,
        description="What agents record at the end of a call, and what each does to the record.",
    )
    # Agentless reminders: said after the amount due; the key connects to an agent.
    reminder_key: Annotated[str, StringConstraints(pattern=r"^[0-9]?$")] = "1"
    reminder_wait_seconds: float = Field(
        default=6.0,
        ge=1,
        le=60,
        description="Reminder mode: how long to wait for reminder_key after the message.",
    )
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
    tick_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often the dialer decides what to dial."
    )

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

    policy: Literal["all", "none", "on_demand"] | None = Field(
        default=None, description="Overrides recordings.policy."
    )
    retention_days: int | None = Field(
        default=None, ge=0, le=36500, description="Overrides recordings.retention_days."
    )
    announcement: list[Prompt] | None = Field(
        default=None, description="Overrides recordings.announcement."
    )


class AuthSettings(_Section):
    """Logins for the web console and the API (users are kept in PostgreSQL)."""

    # A session ends this long after login whatever happens (about one shift) ...
    session_hours: float = Field(default=12.0, gt=0, le=168)
    # ... or after this long without a request (a screen left open keeps it alive).
    idle_minutes: float = Field(default=120.0, gt=0, le=1440)
    # Failed logins allowed per username and address, and per address over all usernames,
    # within the window; more are refused with 429 until the oldest leaves the window.
    login_failures_per_user: int = Field(default=5, ge=1, le=100)
    login_failures_per_address: int = Field(
        default=30,
        ge=1,
        le=10_000,
        description="Failed logins allowed per address over all usernames within the window.",
    )
    login_window_minutes: float = Field(
        default=15.0, gt=0, le=1440, description="The window the failed-login limits count over."
    )
    # Set behind TLS: the browser then sends the session cookie over HTTPS only.
    cookie_secure: bool = False


class ConsoleSettings(_Section):
    """The agent console and supervisor wallboard web pages."""

    enabled: bool = Field(default=True, description="Serve the agent console and wallboard pages.")
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
    retention_interval_seconds: float = Field(
        default=3600.0, gt=0, le=86400, description="How often the retention job runs."
    )
    # A supervisor's own desk phone (PJSIP endpoint), by the name of their role token.
    supervisor_phones: dict[str, PjsipEndpoint] = Field(default_factory=dict)
    monitor_ring_seconds: int = Field(
        default=20,
        ge=3,
        le=120,
        description="How long a supervisor's phone rings when called to listen in.",
    )


CalendarCategory = Literal["public", "government"]


def _public_only() -> list[CalendarCategory]:
    return ["public"]


class CalendarSettings(_Section):
    """A holiday calendar: the ``holidays`` package's country calendar plus override files."""

    # false: the days come from the override files alone and the covered years are their
    # `covers` plus `years` (a centre that keeps its own calendar vouches for what it lists).
    package: bool = True
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(
        default="ID",
        description="Country code (ISO 3166, two letters) of the holidays package's calendar.",
    )
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

    # The cross-checks below name every problem they find, one per line (the loader lists
    # each line as a problem of its own), so one check-config run shows them all. They run
    # only once every key is valid on its own: pydantic validates a model's keys first.
    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        problems = [*self._dids_problems(), *self._calendar_problems(), *self._scope_problems()]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _dids_problems(self) -> list[str]:
        problems: list[str] = []
        seen: dict[str, int] = {}
        for i, h in enumerate(self.hotlines):
            if h.did in seen:
                problems.append(
                    f"hotlines[{i}].did {h.did!r} is already used by hotlines[{seen[h.did]}]"
                )
            else:
                seen[h.did] = i
        queues = {q.name for q in self.acd.queues}
        for i, h in enumerate(self.hotlines):
            if h.queue is not None and h.queue not in queues:
                problems.append(f"hotlines[{i}].queue {h.queue!r} is not a queue in [acd]")
        agent_ids = {a.id for a in self.acd.agents}
        for i, c in enumerate(self.dialer.campaigns):
            for a in c.agents:
                if a not in agent_ids:
                    problems.append(f"dialer.campaigns[{i}].agents names {a!r}, not an agent")
            if f"dialer-{c.name}" in queues:
                problems.append(f"dialer.campaigns[{i}]: queue 'dialer-{c.name}' is taken")
        return problems

    @field_validator("calendars")
    @classmethod
    def _national_calendar(cls, v: dict[str, CalendarSettings]) -> dict[str, CalendarSettings]:
        return {**_default_calendars(), **v}

    def _calendar_problems(self) -> list[str]:
        problems: list[str] = []
        known = ", ".join(sorted(self.calendars))
        for i, c in enumerate(self.dialer.campaigns):
            if c.calendar not in self.calendars:
                problems.append(
                    f"dialer.campaigns[{i}].calendar {c.calendar!r} is not a calendar; "
                    f"calendars: {known}"
                )
        if self.acd.callbacks.calendar not in self.calendars:
            problems.append(
                f"acd.callbacks.calendar {self.acd.callbacks.calendar!r} is not a calendar; "
                f"calendars: {known}"
            )
        return problems

    def _scope_problems(self) -> list[str]:
        problems: list[str] = []
        queues = {q.name for q in self.acd.queues}
        for name in self.recordings.queues:
            if name not in queues:
                problems.append(f"recordings.queues names {name!r}, which is not a queue")
        campaigns = {c.name for c in self.dialer.campaigns}
        for name in self.recordings.campaigns:
            if name not in campaigns:
                problems.append(f"recordings.campaigns names {name!r}, which is not a campaign")
        return problems

    def hotline_for(self, did: str) -> HotlineSettings | None:
        for h in self.hotlines:
            if h.did == did:
                return h
        return None


# ---- loading: file, then environment, then validation ----------------------------------------
#
# Why not pydantic-settings: it has no NAME_FILE form (its secrets_dir reads files named after
# the fields, which is not what Docker, compose or systemd credentials hand over), its
# BaseSettings reads os.environ whenever a Settings() is built (tests and tools build them
# freely), and a bad JSON value stops it with one SettingsError, where this loader reports
# every problem of file and environment together, each naming the variable it came from.
# What it would add (nested names, JSON for lists and tables) is the small part below.

ENV_PREFIX = "SAMBUNG_"
# NAME_FILE holds the path of a file whose content is NAME's value (secrets mounted as files).
FILE_SUFFIX = "_FILE"
# Variables outside the SAMBUNG_<SECTION>__<KEY> scheme, and the key each one sets.
ENV_SHORTCUTS = {
    "DATABASE_URL": "database.url",
    "SAMBUNG_API_TOKEN": "http.api_tokens",
    "SAMBUNG_METRICS_TOKEN": "http.role_tokens",
}
# Fields of Settings that the loader sets, not the file (left out of hints and the reference).
INTERNAL_KEYS = frozenset({"source"})
# Key names whose values are never shown in a message, whatever their type (a URL may hold a
# password; a PIN is a credential).
_SECRET_WORDS = frozenset({"password", "secret", "secrets", "token", "tokens", "url", "pin"})


@dataclass(frozen=True, slots=True)
class SettingsProblem:
    """One thing wrong in the settings.

    ``file`` is where the value came from: the settings file, or ``environment NAME`` for a
    variable (with the file's path for ``NAME_FILE``); ``key`` is the dotted path
    (``acd.queues[2].ring_timeout_seconds``); ``expected`` says what was expected and, for a
    value that is no secret, what was given; ``line`` and ``column`` are known for syntax
    errors.
    """

    file: str
    key: str
    expected: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        return f"{where}: {self.key}: {self.expected}"


class SettingsInvalid(ConfigError):
    """The settings file or the environment has problems; nothing was loaded.

    ``problems`` holds every problem found and ``str()`` shows them all, one per line, as
    ``ivr.errors.FlowError`` does for flow files, so one ``sambung check-config`` shows all
    there is to fix. ``file``, ``key`` and ``expected`` are the first problem's.
    """

    def __init__(self, problems: Iterable[SettingsProblem]) -> None:
        self.problems: tuple[SettingsProblem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("SettingsInvalid needs at least one problem")
        first = self.problems[0]
        lines = [str(p) for p in self.problems]
        detail = lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n" + "\n".join(lines)
        # ConfigError's own __init__ formats a single problem; the detail here lists them all.
        SambungError.__init__(
            self,
            detail,
            file=first.file,
            key=first.key,
            expected=first.expected,
            problems=len(lines),
        )
        self.file = first.file
        self.key = first.key
        self.expected = first.expected


def _unwrap(tp: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` as ``X``."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
            continue
        if origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _type_at(path: Sequence[int | str]) -> Any | None:
    """The declared type at a settings path, or None where the path leaves the model."""
    tp: Any = Settings
    for part in path:
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if _is_model(tp):
            info = tp.model_fields.get(str(part))
            if info is None:
                return None
            tp = info.annotation
        elif origin is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif origin is dict:
            tp = get_args(tp)[1]
        else:
            return None
    return tp


def _mentions(tp: Any, wanted: type) -> bool:
    return tp is wanted or any(_mentions(a, wanted) for a in get_args(tp))


def _is_secret(loc: Sequence[int | str]) -> bool:
    tp = _type_at(loc)
    named = any(w in _SECRET_WORDS for part in loc for w in str(part).split("_"))
    return named or tp is None or _mentions(tp, SecretStr)


def _key(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":  # pydantic's mark for a bad table key (a name) rather than value
            out += " (the name)"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _is_settings_variable(name: str) -> bool:
    if name in ENV_SHORTCUTS:
        return True
    return name.startswith(ENV_PREFIX) and "__" in name[len(ENV_PREFIX) :]


def _variable_key(name: str) -> str:
    if name in ENV_SHORTCUTS:
        return ENV_SHORTCUTS[name]
    return ".".join(name[len(ENV_PREFIX) :].lower().split("__"))


@dataclass
class _FromEnvironment:
    """What the environment sets: ``data`` to merge over the file, where each value came from
    (a settings path -> the variable), and the problems found reading it."""

    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[tuple[int | str, ...], str] = field(default_factory=dict)
    problems: list[SettingsProblem] = field(default_factory=list)
    # SAMBUNG_API_TOKEN and SAMBUNG_METRICS_TOKEN: (value, where), added to the file's lists.
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)


def _variables(env: Mapping[str, str], out: _FromEnvironment) -> dict[str, tuple[str, str]]:
    """Settings variables -> (value, where it came from), each NAME_FILE read as NAME."""
    values: dict[str, tuple[str, str]] = {}
    for name, value in sorted(env.items()):
        base = name.removesuffix(FILE_SUFFIX)
        if base != name and _is_settings_variable(base):
            key = _variable_key(base)
            if base in env:
                out.problems.append(
                    SettingsProblem(
                        f"environment {base} and {name}",
                        key,
                        f"one of {base} (the value) and {name} (a file holding it), not both",
                    )
                )
                continue
            where = f"environment {name} ({value})"
            try:
                text = Path(value).read_text(encoding="utf-8")
            except OSError as err:
                reason = err.strerror or type(err).__name__
                out.problems.append(
                    SettingsProblem(
                        f"environment {name}", key, f"a readable file ({value}: {reason})"
                    )
                )
                continue
            except UnicodeDecodeError:
                out.problems.append(SettingsProblem(where, key, "a file of UTF-8 text"))
                continue
            # The newline `echo` and editors leave is not part of the value.
            values[base] = (text.rstrip("\r\n"), where)
        elif _is_settings_variable(name) and f"{name}{FILE_SUFFIX}" not in env:
            values[name] = (value, f"environment {name}")
    return values


def _env_overrides(env: Mapping[str, str]) -> _FromEnvironment:
    out = _FromEnvironment()
    values = _variables(env, out)
    for name, (value, where) in values.items():
        if name in ("SAMBUNG_API_TOKEN", "SAMBUNG_METRICS_TOKEN"):
            out.tokens[name] = (value, where)  # added to the file's lists once merged
            continue
        if name == "DATABASE_URL":
            path: tuple[str, ...] = ("database", "url")
        else:
            path = tuple(name[len(ENV_PREFIX) :].lower().split("__"))
        key = ".".join(path)
        if not all(path):
            out.problems.append(
                SettingsProblem(where, key, "a name as SAMBUNG_<SECTION>__<KEY>[__<KEY>...]")
            )
            continue
        parsed = _env_value(path, value, where, out.problems)
        if parsed is _INVALID:
            continue
        node = out.data
        for part in path[:-1]:
            inner = node.setdefault(part, {})
            if not isinstance(inner, dict):  # a JSON value set above, and a key inside it
                out.problems.append(
                    SettingsProblem(where, key, f"one variable for {part}: it is set whole too")
                )
                break
            node = inner
        else:
            node[path[-1]] = parsed
            out.origins[path] = where
    return out


_INVALID = object()
_JSON_TYPES: dict[type, str] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
    type(None): "null",
}


def _env_value(
    path: tuple[str, ...], value: str, where: str, problems: list[SettingsProblem]
) -> Any:
    """A variable's value for ``path``: JSON where the setting is a list or a table (an
    environment variable has no other way to hold one), the text as given otherwise, for
    pydantic to convert as it converts the file's values."""
    key = ".".join(path)
    tp: Any = Settings
    for i, part in enumerate(path):
        tp = _unwrap(tp)
        if _is_model(tp):
            field_info = tp.model_fields.get(part)
            if field_info is None:
                return value  # an unknown key: validation reports it, with its origin
            tp = field_info.annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            whole = ENV_PREFIX + "__".join(path[:i]).upper()
            if get_origin(tp) is list:
                expected = f"no index: a list is set whole, as a JSON array in {whole}"
            else:
                expected = f"no key inside {whole}, which is a single value"
            problems.append(SettingsProblem(where, key, expected))
            return _INVALID
    tp = _unwrap(tp)
    wanted: type
    if get_origin(tp) is list:
        wanted, kind = list, 'a JSON array, such as ["a", "b"]'
    elif get_origin(tp) is dict or _is_model(tp):
        wanted, kind = dict, 'a JSON object, such as {"key": "value"}'
    else:
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as err:
        problems.append(
            SettingsProblem(where, key, f"{kind} ({err.msg} at character {err.pos + 1})")
        )
        return _INVALID
    if not isinstance(parsed, wanted):
        got = _JSON_TYPES.get(type(parsed), type(parsed).__name__)
        problems.append(SettingsProblem(where, key, f"{kind}, not a JSON {got}"))
        return _INVALID
    return parsed


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def _contains(data: Any, loc: Sequence[int | str]) -> bool:
    for part in loc:
        found = (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        )
        if not found:
            return False
        data = data[part]
    return True


def _origin(
    loc: tuple[int | str, ...], file_data: dict[str, Any], source: str, env: _FromEnvironment
) -> str:
    """Where the value at ``loc`` came from: a variable, the file, or both (a list the file
    starts and SAMBUNG_API_TOKEN extends)."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in env.origins:
            return env.origins[loc[:n]]
    inside = [w for p, w in env.origins.items() if loc and p[: len(loc)] == loc]
    if not inside:
        return source
    if not _contains(file_data, loc):
        return " and ".join(sorted(set(inside)))
    return f"{source} (and {' and '.join(sorted(set(inside)))})"


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    parent = _unwrap(_type_at(loc[:-1]))
    if not _is_model(parent):
        return "unknown key"
    known = [k for k in parent.model_fields if k not in INTERNAL_KEYS]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key{hint} (keys here: {', '.join(known)})"


def _validation_problems(
    err: ValidationError, file_data: dict[str, Any], source: str, env: _FromEnvironment
) -> list[SettingsProblem]:
    problems: list[SettingsProblem] = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where = _origin(loc, file_data, source, env)
        if e["type"] == "extra_forbidden":
            # The value is not shown: an unknown key is often a misspelt secret.
            problems.append(SettingsProblem(where, _key(loc), _unknown_key(loc)))
            continue
        got = e.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f", got {got!r}"
        if _is_secret(loc):
            shown = ""  # never echo secrets back into a terminal or a log
        # A cross-check names each problem on a line of its own (see Settings._cross_checks).
        msg = str(e["msg"]).removeprefix("Value error, ")
        problems.extend(
            SettingsProblem(where, _key(loc), f"{line}{shown}") for line in msg.split("\n")
        )
    return problems


def _read_toml(path: Path, source: str) -> tuple[dict[str, Any], list[SettingsProblem]]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        return {}, [SettingsProblem(source, "(file)", f"a readable file ({err.strerror})")]
    try:
        return tomllib.loads(raw.decode("utf-8")), []
    except UnicodeDecodeError as err:
        return {}, [
            SettingsProblem(source, "(file)", f"UTF-8 text ({err.reason} at byte {err.start})")
        ]
    except tomllib.TOMLDecodeError as err:
        # TOML stops at its first syntax error; the position goes where editors look for it.
        text = str(err)
        at = re.search(r" \(at line (\d+), column (\d+)\)$", text)
        line, column = (int(at[1]), int(at[2])) if at else (None, None)
        what = text[: at.start()] if at else text
        return {}, [SettingsProblem(source, "(syntax)", f"valid TOML ({what})", line, column)]


def load_settings(path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """Read settings: defaults, then the TOML file, then the environment.

    Raise :class:`SettingsInvalid` listing every problem found, each naming the file (or the
    variable), the key and what was expected.
    """
    env = os.environ if env is None else env
    source = str(path) if path is not None else "(defaults)"
    file_data, file_problems = _read_toml(path, source) if path is not None else ({}, [])
    from_env = _env_overrides(env)
    problems = [*file_problems, *from_env.problems]
    if file_problems:
        # The file could not be read: validating the defaults instead would only add noise.
        raise SettingsInvalid(problems)
    data = _merge(file_data, from_env.data)
    values = from_env.tokens
    if values.get("SAMBUNG_API_TOKEN", ("", ""))[0]:
        token, where = values["SAMBUNG_API_TOKEN"]
        http = data.setdefault("http", {})
        tokens = [*http.get("api_tokens", []), token]
        http["api_tokens"] = tokens
        from_env.origins["http", "api_tokens", len(tokens) - 1] = where
    if values.get("SAMBUNG_METRICS_TOKEN", ("", ""))[0]:
        token, where = values["SAMBUNG_METRICS_TOKEN"]
        http = data.setdefault("http", {})
        scraper = {"name": "prometheus", "token": token, "role": "metrics"}
        role_tokens = [*http.get("role_tokens", []), scraper]
        http["role_tokens"] = role_tokens
        from_env.origins["http", "role_tokens", len(role_tokens) - 1] = where
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as err:
        problems += _validation_problems(err, file_data, source, from_env)
    if problems or settings is None:
        raise SettingsInvalid(problems)
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
