"""How an unanswered attempt ended, from its Q.850 hang-up cause and SIP status. Pure.

Table-driven: the SIP status (Asterisk 22.7+ reports it as ``tech_cause``) is the more precise
of the two when present, and the Q.850 cause is the fallback (a trunk that maps its own way,
an originate timeout, which has cause 19 and no SIP status of its own). The mapping follows
Asterisk's SIP-to-cause table (res/res_pjsip.c) and Q.850's meaning of each cause; checked
against the sandbox for 486 (cause 17), 480 and the originate timeout (cause 19).
"""

from __future__ import annotations

from typing import Final

BUSY: Final = "busy"
NO_ANSWER: Final = "no_answer"
REJECTED: Final = "rejected"
CONGESTION: Final = "congestion"
INVALID_NUMBER: Final = "invalid_number"
FAILED: Final = "failed"
# The engine or Asterisk lost the call (Asterisk restarted, the channel vanished while the
# event stream was down), whatever the debtor did: kept apart so that reports do not blame the
# debtor or the network for an infrastructure failure.
LOST: Final = "lost"

# SIP final responses to an INVITE that never answered.
SIP_OUTCOME: Final[dict[int, str]] = {
    404: INVALID_NUMBER,  # not found
    410: INVALID_NUMBER,  # gone (number changed)
    484: INVALID_NUMBER,  # address incomplete
    485: INVALID_NUMBER,  # ambiguous
    604: INVALID_NUMBER,  # does not exist anywhere
    486: BUSY,
    600: BUSY,  # busy everywhere
    408: NO_ANSWER,  # request timeout: nobody picked up within the far end's timer
    480: NO_ANSWER,  # temporarily unavailable (phone off, or no answer on a mobile network)
    487: NO_ANSWER,  # request terminated: our CANCEL at the ring timeout
    401: REJECTED,
    403: REJECTED,
    407: REJECTED,
    603: REJECTED,  # decline: the debtor pressed reject
    503: CONGESTION,
    500: CONGESTION,
    502: FAILED,
    504: FAILED,
    488: FAILED,  # not acceptable here: codecs
    606: FAILED,
}

# Q.850 causes, when the SIP status is absent or not in the table above.
CAUSE_OUTCOME: Final[dict[int, str]] = {
    1: INVALID_NUMBER,  # unallocated number
    22: INVALID_NUMBER,  # number changed
    28: INVALID_NUMBER,  # invalid number format
    17: BUSY,
    18: NO_ANSWER,  # no user responding
    19: NO_ANSWER,  # user alerting, no answer (also the originate timeout)
    20: NO_ANSWER,  # subscriber absent (mobile off or out of coverage)
    21: REJECTED,
    34: CONGESTION,
    38: CONGESTION,  # network out of order
    41: CONGESTION,  # temporary failure
    42: CONGESTION,  # switching equipment congestion
    3: FAILED,  # no route to destination: a trunk or dial-plan fault, not the debtor
    27: FAILED,  # destination out of order
    58: FAILED,
    102: FAILED,
    127: FAILED,
}


def classify(cause: int | None, sip_code: int | None) -> str:
    """busy, no_answer, rejected, congestion, invalid_number or failed."""
    if sip_code is not None and sip_code in SIP_OUTCOME:
        return SIP_OUTCOME[sip_code]
    if sip_code is not None and 500 <= sip_code < 600:
        return CONGESTION  # any other server error: the network's trouble, try again soon
    if cause is not None and cause in CAUSE_OUTCOME:
        return CAUSE_OUTCOME[cause]
    return FAILED


def abandoned_in_window(outcome: str, live: bool, connected: bool) -> bool:
    """Whether an ended attempt counts as an abandon under the cap: a live answer that no
    agent took. A live answer lost to a restart is one too: the debtor answered and heard
    nobody, whoever was to blame."""
    return outcome == "abandoned" or (outcome == LOST and live and not connected)
