"""Agents' presence: phones registering, states recorded and published, states restored.

- A phone's device state decides whether its agent can be ready (ari-notes 1.4): any aggregate
  state but UNAVAILABLE, INVALID and UNKNOWN is a registered phone.
- Every state change becomes an ``agent_states`` fact and a message on the agent's stream.
- After each (re)connect to Asterisk the queues' holding bridges are made sure of, and every
  phone is asked for its state, which makes good the events missed while disconnected.
- At start-up agents take back the state they had (logged out or paused); one that was in a
  call is paused until its phone is confirmed registered.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import structlog

from sambung.acd import store
from sambung.acd.agents import Agent, AgentState, StateChange
from sambung.acd.call import bridge_for_queue
from sambung.acd.events import AgentStateChanged
from sambung.acd.facts import AgentStateFact, AgentUpsertFact
from sambung.acd.hub import AgentHub
from sambung.acd.service import AcdService
from sambung.asterisk.telephony import AriTelephony
from sambung.engine.db import DB_ERRORS
from sambung.engine.errors import TelephonyError
from sambung.engine.events import DeviceChanged
from sambung.engine.facts import Fact

log = structlog.get_logger(__name__)


def online(device_state: str) -> bool:
    """A registered phone: any aggregate device state but these (ari-notes 1.4)."""
    return device_state not in ("UNAVAILABLE", "INVALID", "UNKNOWN")


class Presence:
    def __init__(
        self,
        acd: AcdService,
        hub: AgentHub,
        record: Callable[[Fact], None],
        instance_id: str,
        run_id: str,
    ) -> None:
        self._acd = acd
        self._hub = hub
        self._record = record
        self._instance = instance_id
        self._run = run_id
        acd.agents.listeners.append(self.changed)

    def changed(self, agent: Agent, change: StateChange) -> None:
        self._record(
            AgentStateFact(
                change.agent_id,
                self._instance,
                self._run,
                change.seq,
                change.at,
                change.state.value,
                change.previous.value,
                change.reason,
                change.call_id,
                change.source,
            )
        )
        log.info(
            "agent.state",
            agent=change.agent_id,
            state=change.state.value,
            reason=change.reason or None,
            previous=change.previous.value,
            source=change.source,
        )
        self._hub.publish(
            AgentStateChanged(
                change.agent_id,
                change.state,
                change.reason,
                change.previous,
                change.at,
                change.call_id,
            )
        )

    def device(self, event: DeviceChanged) -> None:
        agent = self._acd.agents.by_device(event.device)
        if agent is None:
            return
        now_online = online(event.state)
        if now_online != agent.online:
            log.info(
                "acd.phone", agent=agent.profile.agent_id, online=now_online, state=event.state
            )
        self._acd.agents.phone_state(agent, now_online)

    async def sync(self, tel: AriTelephony) -> None:
        """After each (re)connect: the queues' holding bridges, and every phone's state."""
        for name, q in self._acd.queues.items():
            try:
                await tel.ensure_holding_bridge(bridge_for_queue(name), q.moh_class)
            except TelephonyError as err:
                log.error("acd.bridge_setup_failed", queue=name, error=str(err))
        for agent in self._acd.agents.all():
            try:
                state = await tel.device_state(agent.profile.device)
            except TelephonyError as err:
                log.warning("acd.device_state_failed", agent=agent.profile.agent_id, error=str(err))
                continue
            self._acd.agents.phone_state(agent, online(state))
        log.info("acd.synced", queues=len(self._acd.queues), agents=len(self._acd.agents.all()))

    async def restore(self, pool: asyncpg.Pool) -> None:
        """Agents keep their state across an engine restart (their calls do not)."""
        now = datetime.now(UTC)
        for agent in self._acd.agents.all():
            p = agent.profile
            self._record(
                AgentUpsertFact(
                    p.agent_id,
                    p.name,
                    p.endpoint,
                    p.team,
                    json.dumps(dict(p.skills)),
                    sorted(p.queues),
                    now,
                )
            )
        try:
            async with pool.acquire() as conn:
                rows = await store.last_agent_states(conn)
        except DB_ERRORS as err:
            log.warning("acd.restore_failed", error=str(err))
            return
        for agent_id, state_name, reason, since in rows:
            state = AgentState(state_name)
            if state in (AgentState.LOGGED_OUT, AgentState.PAUSED):
                self._acd.agents.restore(agent_id, state, reason, since)
            else:
                # Mid-call states died with the previous run: the agent is available again
                # once the phone is confirmed registered (paused until then).
                self._acd.agents.restore(agent_id, AgentState.PAUSED, "phone_offline", since)
        self._acd.refresh_agent_gauges()
