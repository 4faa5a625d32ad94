"""Which feature takes a new call, by what was dialled.

In order: a feature code (an agent's phone dialling ``*…``) goes to the ACD; a DID with an IVR
flow runs the flow, and a flow that hands off puts the caller in its queue; a hotline with a
queue and no flow goes straight to the queue; any other hotline hears its greeting (a short
flow of its own), and a number nobody serves hears so.

The route is picked once, when the dispatcher records the call's start (``hotline_of``), and
the call task then takes that same route: a reload in between never changes a call, and the
``calls`` row names the flow or hotline the call really took.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from sambung.acd.call import QueueCallInfo
from sambung.acd.feature import Acd
from sambung.engine.calls import CallInbox
from sambung.engine.config import HotlineSettings
from sambung.engine.events import CallOffered
from sambung.engine.logging import mask_personal
from sambung.ivr.feature import Ivr
from sambung.ivr.model import Flow
from sambung.ivr.runner import Handoff

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Route:
    flow: Flow | None  # an IVR flow, or a hotline's greeting flow
    queue: HotlineSettings | None  # a hotline that sends its calls straight to a queue
    name: str | None  # the hotline or flow, for the calls row


class CallRouter:
    def __init__(
        self,
        hotline_for: Callable[[str], HotlineSettings | None],
        ivr: Ivr,
        acd: Acd,
    ) -> None:
        self._hotline_for = hotline_for
        self._ivr = ivr
        self._acd = acd
        # Routes picked at the offer and not yet taken by the call task.
        self._picked: dict[str, _Route] = {}

    def hotline_of(self, offer: CallOffered) -> str | None:
        """Pick the call's route now and name its hotline or flow (the dispatcher asks)."""
        if offer.kind == "feature":
            return None
        route = self._pick(offer)
        self._picked[offer.call_id] = route
        return route.name

    def _pick(self, offer: CallOffered) -> _Route:
        flow = self._ivr.flow_for(offer.did)
        if flow is not None:
            return _Route(flow, None, flow.name)
        hotline = self._hotline_for(offer.did)
        if hotline is not None and hotline.queue is not None:
            return _Route(None, hotline, hotline.name)
        greeting = self._ivr.greeting_for(offer.did)
        return _Route(greeting, None, hotline.name if hotline is not None else None)

    async def handle(self, offer: CallOffered, inbox: CallInbox) -> None:
        if offer.kind == "feature":
            await self._acd.feature_code(offer, inbox)
            return
        route = self._picked.pop(offer.call_id, None) or self._pick(offer)
        # The caller's number is personal data: masked here as well as by the log pipeline,
        # so a handler set up without that pipeline cannot print it whole.
        log.info(
            "call.offered",
            did=offer.did,
            caller_number=mask_personal(offer.caller_number),
            route=route.name or "unknown_number",
        )
        if route.flow is not None:
            handoff = await self._ivr.run_flow(offer, inbox, route.flow)
            if handoff is not None:
                await self.to_queue(offer, inbox, handoff)
            return
        hotline = route.queue
        assert hotline is not None
        queue = hotline.queue
        assert queue is not None
        info = QueueCallInfo(
            offer.call_id,
            queue,
            offer.caller_number,
            offer.caller_name,
            offer.did,
            hotline.language,
            {"caller_number": offer.caller_number, "did": offer.did},
            answered=False,
        )
        await self._acd.queue_call(info, inbox)

    async def to_queue(self, offer: CallOffered, inbox: CallInbox, handoff: Handoff) -> None:
        """A flow handed its caller to a queue, with what it learnt."""
        info = QueueCallInfo(
            offer.call_id,
            handoff.queue,
            offer.caller_number,
            offer.caller_name,
            offer.did,
            handoff.language or None,
            handoff.attributes,
            answered=True,
        )
        await self._acd.queue_call(info, inbox)

    async def refuse(self, offer: CallOffered) -> None:
        self._picked.pop(offer.call_id, None)
        await self._ivr.refuse(offer)
