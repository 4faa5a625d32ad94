"""The agent console and supervisor wallboard: server-rendered pages updated live over SSE.

The console is given the services it uses (``ConsoleServices``), never the engine itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge

if TYPE_CHECKING:
    from acd.agents import AgentBook
    from acd.hub import AgentHub
    from auth.service import AuthService
    from dialer.feature import Dialer
    from engine.config import DispositionSettings
    from recordings.monitor import MonitorService


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
    queue_dispositions: Mapping[str, Sequence[DispositionSettings]] = field(default_factory=dict)
    campaign_dispositions: Mapping[str, Sequence[DispositionSettings]] = field(default_factory=dict)
    auth: AuthService | None = None
    cookie_secure: bool = False
    # Supervisors' listen / whisper / barge from the wallboard.
    monitor: MonitorService | None = None
