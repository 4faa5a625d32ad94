"""Desk-phone feature codes: an agent changes state from the phone, after entering a PIN.

``*51`` log in (ready), ``*52`` pause (reason ``break``), ``*53`` ready again, ``*59`` log out.
The phone's endpoint says which agent it is; the PIN proves it is that agent, so a borrowed or
unattended phone cannot change someone else's state. Every attempt is a row in ``calls``
(direction ``agent_feature``) and a metric by code and result; a wrong PIN is logged.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import structlog

from sambung.acd.agents import AgentBook, AgentError
from sambung.engine.calls import CallInbox
from sambung.engine.errors import TelephonyError
from sambung.engine.events import CallEnded, CallerHungUp, CallOffered, DigitPressed, PromptFinished
from sambung.engine.facts import CallEndedFact, Fact
from sambung.engine.metrics import Metrics
from sambung.engine.ports import Telephony

log = structlog.get_logger(__name__)

CODES = {"*51": "login", "*52": "pause", "*53": "ready", "*59": "logout"}
PIN_TIMEOUT_SECONDS = 10.0
MAX_PIN_DIGITS = 8
_CONFIRM = {
    "login": "sound:sambung/agent-ready",
    "ready": "sound:sambung/agent-ready",
    "pause": "sound:sambung/agent-paused",
    "logout": "sound:sambung/agent-logged-out",
}


class FeatureCodes:
    def __init__(
        self,
        agents: AgentBook,
        pins: Mapping[str, str],
        telephony: Telephony,
        record: Callable[[Fact], None],
        metrics: Metrics,
        language: str = "en",
    ) -> None:
        self.agents = agents
        self._pins = dict(pins)
        self.tel = telephony
        self.record = record
        self.m = metrics
        self.language = language

    async def handle(self, offer: CallOffered, inbox: CallInbox) -> None:
        code = offer.did
        action = CODES.get(code)
        agent = self.agents.by_endpoint(offer.endpoint)
        result = "unknown_code" if action is None else "unknown_phone" if agent is None else ""
        ended: CallEnded | CallerHungUp | None = None
        try:
            await self.tel.answer(offer.call_id)
            if result:
                await self._say(offer.call_id, inbox, "sound:sambung/agent-refused")
                return
            assert agent is not None
            assert action is not None
            pin, ended = await self._collect_pin(offer.call_id, inbox)
            if ended is not None:
                result = "abandoned"
                return
            expected = self._pins.get(agent.profile.agent_id, "")
            if not expected or not hmac.compare_digest(pin.encode(), expected.encode()):
                result = "wrong_pin"
                log.warning("acd.feature_wrong_pin", agent=agent.profile.agent_id, code=code)
                await self._say(offer.call_id, inbox, "sound:sambung/agent-wrong-pin")
                return
            # The phone is calling us, so it is registered, whatever the last event said.
            self.agents.phone_state(agent, True)
            agent_id = agent.profile.agent_id
            try:
                if action == "login":
                    if agent.state.value == "logged_out":
                        self.agents.login(agent_id, "phone")
                    else:
                        self.agents.make_ready(agent_id, "phone")
                elif action == "ready":
                    self.agents.make_ready(agent_id, "phone")
                elif action == "pause":
                    self.agents.pause(agent_id, "break", "phone")
                else:
                    self.agents.logout(agent_id, "phone")
            except AgentError as err:
                result = "refused"
                log.info("acd.feature_refused", agent=agent_id, code=code, error=err.detail)
                await self._say(offer.call_id, inbox, "sound:sambung/agent-refused")
                return
            result = "ok"
            log.info("acd.feature", agent=agent_id, code=code, action=action)
            await self._say(offer.call_id, inbox, _CONFIRM[action])
        except TelephonyError as err:
            result = result or "failed"
            log.warning("acd.feature_failed", error=str(err))
        finally:
            self.m.agent_feature_codes.labels(code=code if action else "other", result=result).inc()
            with contextlib.suppress(TelephonyError):
                await self.tel.hangup(offer.call_id)
            self.record(
                CallEndedFact(
                    offer.call_id, datetime.now(UTC), f"feature_{result}", None, None, None
                )
            )

    async def _collect_pin(
        self, call_id: str, inbox: CallInbox
    ) -> tuple[str, CallEnded | CallerHungUp | None]:
        pid = f"{call_id}-pin"
        await self.tel.play(call_id, pid, ("sound:sambung/agent-enter-pin",), self.language)
        digits = ""
        while True:
            item = await inbox.next(PIN_TIMEOUT_SECONDS)
            match item:
                case None:
                    return digits, None
                case CallEnded() | CallerHungUp():
                    return digits, item
                case DigitPressed(digit="#"):
                    return digits, None
                case DigitPressed(digit=d):
                    if not digits:
                        with contextlib.suppress(TelephonyError):
                            await self.tel.stop_prompt(pid)
                    digits += d
                    if len(digits) >= MAX_PIN_DIGITS:
                        return digits, None
                case _:
                    pass

    async def _say(self, call_id: str, inbox: CallInbox, media: str) -> None:
        pid = f"{call_id}-say-{media.rsplit('/', 1)[-1]}"
        await self.tel.play(call_id, pid, (media,), self.language)
        while True:
            item = await inbox.next(15)
            if item is None or isinstance(item, CallEnded | CallerHungUp):
                return
            if isinstance(item, PromptFinished) and item.prompt_id == pid:
                return
