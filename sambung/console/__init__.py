"""The agent console and supervisor wallboard: server-rendered pages updated live over SSE.

The console is given the services it uses (``ConsoleServices``), never the engine itself, and
its own frozen config (``ConsoleConfig``), which ``config`` converts from the shell's settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge

from sambung.console.model import ConsoleConfig

if TYPE_CHECKING:
    from sambung.acd.agents import AgentBook
    from sambung.acd.hub import AgentHub
    from sambung.acd.model import DispositionConfig
    from sambung.auth.service import AuthService
    from sambung.dialer.feature import Dialer
    from sambung.engine.config import ConsoleSettings
    from sambung.recordings.monitor import MonitorService


@dataclass(frozen=True)
class ConsoleServices:
    agents: AgentBook
    # The agents' event stream: the agent page listens to its agent's, the cards to all.
    hub: AgentHub
    # (agent id, action, pause reason) -> the agent's view
    agent_action: Callable[[str, str, str], dict[str, object]]
    # (call id, agent id) -> whether the agent handled the call
    handled_by: Callable[[str, str], Awaitable[bool]]
    # (call id, agent id, code, note, details)
    disposition: Callable[[str, str, str, str, dict[str, Any] | None], Awaitable[None]]
    # Preview campaigns, campaign actions and an account's earlier promises.
    dialer: Dialer
    wallboard: Callable[[], Awaitable[dict[str, Any]]]
    # sambung_console_streams{page}
    streams: Gauge
    # The disposition schema of each queue and campaign (the agent's disposition form).
    queue_dispositions: Mapping[str, Sequence[DispositionConfig]] = field(default_factory=dict)
    campaign_dispositions: Mapping[str, Sequence[DispositionConfig]] = field(default_factory=dict)
    auth: AuthService | None = None
    cookie_secure: bool = False
    # Supervisors' listen / whisper / barge from the wallboard.
    monitor: MonitorService | None = None


def config(settings: ConsoleSettings) -> ConsoleConfig:
    # The one place the console reads the shell's settings.
    return ConsoleConfig(
        pause_reasons=tuple(settings.pause_reasons),
        wallboard_refresh_seconds=settings.wallboard_refresh_seconds,
    )
