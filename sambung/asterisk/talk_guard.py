"""Asterisk's own end to a talk whose other side hung up while no engine runs.

A waiting caller nobody drives is released by ``TIMEOUT(absolute)`` (``acd/safeguard.py``). A
talk cannot be bounded that way: a timeout would cut a conversation that is going fine. What
goes wrong with a talk and no engine is narrower: one side hangs up, and the other is left in
the call's bridge, in silence (or in the music on hold) for as long as it cares to wait, since
ending it was the engine's job.

So each side of a talk carries a hangup handler naming the other side's channel id
(``[sambung-talk-guard]`` in ``asterisk/conf/extensions.conf``). It runs whenever that side
hangs up, and acts only when:

- no engine runs: the global ``SAMBUNG_ENGINE_UNTIL`` (an epoch the active engine keeps
  ``ENGINE_UNTIL_AHEAD`` seconds ahead of now, and sets to 0 when it hands its calls over or
  stops) has passed; with an engine running, the engine ends the other side itself;
- the other side still talks with this one: a caller's place (``SAMBUNG_PLACE``) names this
  channel as its talk's leg, or an agent's leg names this channel in ``SAMBUNG_TALK_OF``. A
  side that has moved on (a transfer) is left alone.

It then ends the other side with normal clearing, which is what the engine does when one side
of a talk hangs up, after clearing its own two variables so that the other side's handler,
which runs next, does not try to end it back. Checked on Asterisk 22.10.1:
``CHANNEL(hangup_handler_push)`` is taken as an originate variable, and ``ChannelRedirect``
takes a channel out of Stasis and its mixing bridge whether or not the application is
connected.

An agent's leg gets both variables when it is originated (no extra request); a caller gets its
handler when it is put through (one request, after the bridge is made). The epoch is compared
with Asterisk's clock: engine and Asterisk hosts keep time by NTP, as SIP and recordings need
anyway.
"""

from __future__ import annotations

from typing import Final

# The dialplan context of the handler, and the variables it reads.
CONTEXT: Final = "sambung-talk-guard"
ENGINE_UNTIL: Final = "SAMBUNG_ENGINE_UNTIL"
TALK_OF: Final = "SAMBUNG_TALK_OF"
# The active engine writes the global every BEAT_SECONDS, AHEAD seconds ahead of now, each
# write bounded to two beats. After a crash the handler stays quiet for at most AHEAD seconds (a
# side that hangs up in that span is left to the next engine, which ends a talk it finds with
# one side). AHEAD spans three bounded writes in a row, so an engine that is alive but slow is
# not taken for a dead one; that would end a caller mid-transfer (the leg is hung up a moment
# before the caller's place stops naming it).
BEAT_SECONDS: Final = 1.0
ENGINE_UNTIL_AHEAD: Final = 8


def handler(partner_id: str) -> str:
    """The value of ``CHANNEL(hangup_handler_push)`` (or ``_wipe``) on one side of a talk."""
    return f"{CONTEXT},s,1({partner_id})"


def leg_variables(partner_id: str) -> dict[str, str]:
    """Originate variables for a leg engine-made for a talk with ``partner_id``."""
    return {TALK_OF: partner_id, "CHANNEL(hangup_handler_push)": handler(partner_id)}
