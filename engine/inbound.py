"""Which feature takes a new call, by what was dialled.

In order: a feature code (an agent's phone dialling ``*…``) goes to the ACD; a DID with an IVR
flow runs the flow, and a flow that hands off puts the caller in its queue; a hotline with a
queue and no flow goes straight to the queue; any other hotline is greeted, and a number
nobody serves hears so. The flow is picked once, at the start: a reload later never changes a
call in progress.
"""

from __future__ import annotations

from collections.abc import Callable

from acd.call import QueueCallInfo
from acd.feature import Acd
from engine.calls import CallInbox
from engine.config import HotlineSettings
from engine.events import CallOffered
from engine.facts import CallStartedFact, Fact
from ivr.feature import Ivr


class CallRouter:
    def __init__(
        self,
        hotline_for: Callable[[str], HotlineSettings | None],
        ivr: Ivr,
        acd: Acd,
        record: Callable[[Fact], None],
        instance_id: str,
        asterisk_id: Callable[[], str],
    ) -> None:
        self._hotline_for = hotline_for
        self._ivr = ivr
        self._acd = acd
        self._record = record
        self._instance = instance_id
        self._asterisk_id = asterisk_id

    async def handle(self, offer: CallOffered, inbox: CallInbox) -> None:
        if offer.kind == "feature":
            await self._acd.feature_code(offer, inbox)
            return
        flow = self._ivr.flow_for(offer.did)
        if flow is not None:
            handoff = await self._ivr.run_flow(offer, inbox, flow)
            if handoff is not None:
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
            return
        hotline = self._hotline_for(offer.did)
        if hotline is not None and hotline.queue is not None:
            self._record(
                CallStartedFact(
                    offer.call_id,
                    "inbound",
                    offer.channel_name,
                    offer.did,
                    offer.caller_number,
                    offer.caller_name,
                    hotline.name,
                    self._asterisk_id(),
                    self._instance,
                    offer.at,
                )
            )
            info = QueueCallInfo(
                offer.call_id,
                hotline.queue,
                offer.caller_number,
                offer.caller_name,
                offer.did,
                hotline.language,
                {"caller_number": offer.caller_number, "did": offer.did},
                answered=False,
            )
            await self._acd.queue_call(info, inbox)
            return
        await self._ivr.greet(offer, inbox)

    async def refuse(self, offer: CallOffered) -> None:
        await self._ivr.refuse(offer)
