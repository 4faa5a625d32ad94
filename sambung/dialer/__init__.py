"""The predictive dialer for telecollection: campaigns, debtor lists, pacing under the abandon
cap, the calling rules (POJK 22/2023), promises to pay and payments, and preview dialling.

``config`` converts the shell's settings into the dialer's own frozen config
(``dialer/model.py``); ``campaign_queues`` adds one ACD queue per campaign to the ACD's config;
``setup`` builds the feature; ``Dialer.start`` attaches it to the running engine;
``Dialer.add_routes`` adds its routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sambung.acd.feature import Acd
    from sambung.acd.model import AcdConfig
    from sambung.dialer.feature import Dialer
    from sambung.dialer.model import DialerConfig
    from sambung.engine.calendars import HolidayCalendar
    from sambung.engine.config import DialerSettings
    from sambung.engine.metrics import Metrics


def config(settings: DialerSettings) -> DialerConfig:
    # The only way into the converter: the rest of the dialer never reads the shell's settings.
    from sambung.dialer.settings import dialer_config

    return dialer_config(settings)


def setup(
    config: DialerConfig,
    acd: Acd,
    metrics: Metrics,
    instance_id: str,
    calendars: Mapping[str, HolidayCalendar],
    *,
    sweep_every_instance: bool = False,
) -> Dialer:
    # Imported here, not at the top: this package's small modules (models, SQL, pure rules)
    # are imported from all over the engine, and must not pull the whole feature in with them.
    from sambung.dialer.feature import Dialer

    return Dialer(
        config, acd, metrics, instance_id, calendars, sweep_every_instance=sweep_every_instance
    )


def campaign_queues(acd: AcdConfig, dialer: DialerConfig) -> AcdConfig:
    """The ACD's config with one queue per campaign, and each campaign agent serving it."""
    from sambung.dialer.feature import campaign_queues as queues

    return queues(acd, dialer)


__all__ = ["campaign_queues", "config", "setup"]
