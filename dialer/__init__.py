"""The predictive dialer for telecollection: campaigns, debtor lists, pacing under the abandon
cap, the calling rules (POJK 22/2023), promises to pay and payments, and preview dialling.

``campaign_queues`` gives the ACD one queue per campaign; ``setup`` builds the feature;
``Dialer.start`` attaches it to the running engine; ``Dialer.add_routes`` adds its routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from acd.feature import Acd
    from dialer.feature import Dialer
    from engine.calendars import HolidayCalendar
    from engine.config import AcdSettings, DialerSettings, Settings
    from engine.metrics import Metrics


def setup(
    settings: DialerSettings,
    acd: Acd,
    metrics: Metrics,
    instance_id: str,
    calendars: Mapping[str, HolidayCalendar],
) -> Dialer:
    # Imported here, not at the top: this package's small modules (models, SQL, pure rules)
    # are imported from all over the engine, and must not pull the whole feature in with them.
    from dialer.feature import Dialer

    return Dialer(settings, acd, metrics, instance_id, calendars)


def campaign_queues(settings: Settings) -> AcdSettings:
    """The ACD's settings with one queue per campaign, and each campaign agent serving it."""
    from dialer.feature import campaign_queues as queues

    return queues(settings)


__all__ = ["campaign_queues", "setup"]
