"""The features' frozen config: each converter carries every setting the feature reads, and the
config's own defaults (which tests build queues and agents with) are the settings' defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from sambung import acd, console, dialer, ivr, recordings
from sambung.acd.model import (
    AcdConfig,
    AgentConfig,
    CallbackRuleConfig,
    DispositionConfig,
    QueueConfig,
)
from sambung.acd.settings import (
    agent_config,
    callback_rule_config,
    disposition_config,
    queue_config,
)
from sambung.console.model import ConsoleConfig
from sambung.dialer.model import DialerConfig
from sambung.engine.config import (
    AcdSettings,
    AgentSettings,
    CallbackRuleSettings,
    CallSettings,
    ConsoleSettings,
    DialerSettings,
    DispositionSettings,
    QueueSettings,
    Settings,
    load_settings,
)
from sambung.ivr.model import IvrConfig

ROOT = Path(__file__).resolve().parents[2]


def plain(v: Any) -> Any:
    """Settings and config alike as dicts and tuples, to compare field by field."""
    if isinstance(v, BaseModel):
        return {k: plain(getattr(v, k)) for k in type(v).model_fields}
    if is_dataclass(v) and not isinstance(v, type):
        return {f.name: plain(getattr(v, f.name)) for f in fields(v)}
    if isinstance(v, SecretStr):
        return v.get_secret_value()
    if isinstance(v, Mapping):
        # A mapping in the settings is a sorted tuple of pairs in the config.
        return tuple(sorted((k, plain(x)) for k, x in v.items()))
    if isinstance(v, list | tuple):
        return tuple(plain(x) for x in v)
    return v


def differences(config: Any, settings: Any, where: str = "") -> list[str]:
    """Where a config field differs from the setting of the same name. Settings the feature
    does not read have no field; fields the config gets from elsewhere have no setting."""
    if isinstance(config, dict) and isinstance(settings, dict):
        out = []
        for k in config.keys() & settings.keys():
            out += differences(config[k], settings[k], f"{where}.{k}")
        return out
    if isinstance(config, tuple) and isinstance(settings, tuple) and len(config) == len(settings):
        return [
            d
            for i, (c, s) in enumerate(zip(config, settings, strict=True))
            for d in differences(c, s, f"{where}[{i}]")
        ]
    return [] if config == settings else [f"{where}: {config!r} != {settings!r}"]


def example() -> Settings:
    return load_settings(ROOT / "examples" / "sambung.toml", env={})


def test_given_the_example_settings_then_the_acd_config_carries_every_setting() -> None:
    s = example()
    config = acd.config(s.acd, s.calls)
    assert differences(plain(config), plain(s.acd)) == []
    assert config.max_silent_seconds == s.calls.max_silent_seconds
    assert config.queues  # the example has something to compare
    assert config.agents


def test_given_the_example_settings_then_the_dialer_config_carries_every_setting() -> None:
    s = example()
    config = dialer.config(s.dialer)
    assert differences(plain(config), plain(s.dialer)) == []
    assert config.campaigns


def test_given_the_example_settings_then_the_ivr_config_carries_every_setting() -> None:
    s = example()
    config = ivr.config(s)
    assert differences(plain(config), plain(s.ivr)) == []
    assert differences(plain(config.hotlines), plain(s.hotlines)) == []
    assert config.transfer_queues == (*s.ivr.queues, *(q.name for q in s.acd.queues))
    assert config.unknown_number_prompts == tuple(s.calls.unknown_number_prompts)
    assert config.max_silent_seconds == s.calls.max_silent_seconds


def test_given_the_example_settings_then_the_recordings_config_carries_every_setting() -> None:
    s = example()
    config = recordings.config(s)
    assert differences(plain(config), plain(s.recordings)) == []
    assert config.rules.default.policy == s.recordings.policy
    assert config.journal.name == f"recordings-{s.engine.instance_id}.jsonl"
    assert config.retry_max_seconds == s.database.retry_max_seconds


def test_the_config_defaults_are_the_settings_defaults() -> None:
    assert AcdConfig() == acd.config(AcdSettings(), CallSettings())
    assert QueueConfig("q") == queue_config(QueueSettings(name="q"))
    assert CallbackRuleConfig() == callback_rule_config(CallbackRuleSettings())
    assert DispositionConfig("x", "X") == disposition_config(
        DispositionSettings(code="x", label="X")
    )
    agent = AgentSettings(id="a", name="A", endpoint="e", pin=SecretStr("1234"))
    assert AgentConfig("a", "A", "e", "1234") == agent_config(agent)
    assert DialerConfig() == dialer.config(DialerSettings())
    assert IvrConfig() == ivr.config(Settings())
    assert ConsoleConfig() == console.config(ConsoleSettings())


def test_an_agents_pin_stays_out_of_its_repr() -> None:
    assert "4321" not in repr(AgentConfig("a", "A", "e", "4321"))
