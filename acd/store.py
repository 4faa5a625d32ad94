"""The ACD's SQL reads. (Its writes are facts: ``acd/facts.py``.)"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from dialer.store import dnc_hits
from engine.db import Conn


async def callback_history(
    conn: Conn, e164: str, forms: Iterable[str], since: datetime
) -> tuple[frozenset[str], tuple[datetime, ...]]:
    """The do-not-call entries for ``e164`` and the callback dials to the number since
    ``since``, oldest first.

    A callback's ``calls`` row keeps the customer's number in ``caller_number``: as E.164
    digits now, as the caller id came in before, so every form the number was written in
    (``forms``) is looked for.
    """
    dnc = await dnc_hits(conn, [e164], [])
    rows = await conn.fetch(
        """SELECT started_at FROM calls
           WHERE direction = 'callback' AND caller_number = ANY($1) AND started_at >= $2
           ORDER BY started_at""",
        sorted({e164, *forms}),
        since,
    )
    return frozenset(dnc), tuple(r["started_at"] for r in rows)
