"""A hotline's greeting as an IVR flow: play the greeting, then hang up.

Hotlines in the settings file with neither a flow nor a queue, and numbers nobody serves, are
greeted by the same machine (``ivr/menu.py``) and executor (``ivr/runner.py``) as every flow,
so they get the same answering, prompt, silence and hang-up handling and the same facts (an IVR
session with its steps). The flow is two nodes: the message, then a silent hang-up that names
the call's end. The message is one node rather than a hang-up node's prompts on purpose: a
caller who leaves during it has not heard it, which reads as abandoned, not completed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sambung.ivr.model import Flow, HangupNode, PlayNode

UNKNOWN_NUMBER_FLOW = "unknown-number"


def greeting_flow(
    name: str, dids: Sequence[str], prompts: Sequence[str], language: str, end_reason: str
) -> Flow:
    """The flow for a greeting: ``prompts`` in ``language``, then hang up with ``end_reason``."""
    media = tuple(prompts)
    nodes = (
        # No barge-in: a greeting is not a menu, a key press must not cut it short.
        ("greeting", PlayNode("greeting", media, "end", barge_in=False)),
        ("end", HangupNode("end", (), end_reason)),
    )
    # Calls keep the version they started with, as for flow files: a content hash.
    version = hashlib.sha256(repr((name, media, language, end_reason)).encode()).hexdigest()
    return Flow(
        name=name,
        dids=tuple(dids),
        start="greeting",
        nodes=nodes,
        default_language=language,
        languages=(language,),
        zero_out_key=None,
        source="settings",
        version=version,
    )
