"""Typed settings: defaults, then a TOML file, then the environment. Loaded once, passed in.

Why pydantic: the settings are nested, typed and validated with precise error locations, which
is exactly what turns a bad file into "file, key, what was expected". Domain modules never
import this module; the composition root hands each part only the values it needs.

Environment overrides use ``SAMBUNG_<SECTION>__<KEY>`` (for example
``SAMBUNG_ARI__PASSWORD``); ``DATABASE_URL`` is honoured as the conventional name for the
database URL, and ``SAMBUNG_API_TOKEN`` adds an API token without writing it into a file.
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

from engine.errors import ConfigError

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


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    # 0 picks a free port (tests, side-by-side benchmarks); the bound port is logged at start.
    port: int = Field(default=8480, ge=0, le=65535)
    api_tokens: list[SecretStr] = Field(default_factory=list)

    @field_validator("api_tokens")
    @classmethod
    def _tokens_long_enough(cls, v: list[SecretStr]) -> list[SecretStr]:
        for t in v:
            if len(t.get_secret_value()) < 16:
                raise ValueError("each API token must be at least 16 characters")
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


class QueueSettings(_Section):
    name: Name
    language: Literal["en", "id"] = "en"
    greeting: list[Prompt] = Field(default_factory=list)
    moh_class: str = "default"
    # Position (and expected wait) said to each caller on their own channel this often; 0 = never.
    announce_every_seconds: float = Field(default=30.0, ge=0, le=3600)
    announce_position: bool = True
    announce_wait: bool = True
    priority: int = Field(default=0, ge=0, le=9)
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


class AcdSettings(_Section):
    # A caller who hangs up within this many seconds of joining is a short abandon.
    short_abandon_seconds: float = Field(default=5.0, ge=0, le=600)
    service_level_window_seconds: float = Field(default=3600.0, gt=0, le=86400)
    # Phone-initiated hold longer than this raises a reminder to the agent and supervisors.
    hold_reminder_seconds: float = Field(default=60.0, gt=0, le=3600)
    # A caller asked for a callback is dialled through this endpoint: <number>@<trunk>.
    callback_trunk: str = "customers"
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


class Settings(_Section):
    engine: EngineSettings = EngineSettings()
    http: HttpSettings = HttpSettings()
    database: DatabaseSettings = DatabaseSettings()
    ari: AriSettings = AriSettings()
    ami: AmiSettings = AmiSettings()
    calls: CallSettings = CallSettings()
    ivr: IvrSettings = IvrSettings()
    acd: AcdSettings = AcdSettings()
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
    data = _merge(data, overrides)
    if extra_token:
        http = data.setdefault("http", {})
        http["api_tokens"] = [*http.get("api_tokens", []), extra_token]
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
    return settings.model_copy(update={"ivr": ivr, "source": path})
