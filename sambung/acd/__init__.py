"""The ACD: hold queues, skill-based routing to agents, callbacks, agents' states and the
feature codes agents dial on their phones.

``config`` converts the shell's settings into the ACD's own frozen config (``acd/model.py``);
``setup`` builds the feature from that config; ``Acd.start`` attaches it to the running
engine (Asterisk, PostgreSQL, the fact writer); ``Acd.add_routes`` adds its HTTP routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sambung.acd.feature import Acd
    from sambung.acd.model import AcdConfig
    from sambung.engine.config import AcdSettings, CallSettings
    from sambung.engine.metrics import Metrics


def config(settings: AcdSettings, calls: CallSettings) -> AcdConfig:
    """The ACD's config; the composition root may extend it (the dialer adds its campaign
    queues) before ``setup``."""
    # The only way into the converter: the rest of the ACD never reads the shell's settings.
    from sambung.acd.settings import acd_config

    return acd_config(settings, calls)


def setup(
    config: AcdConfig,
    metrics: Metrics,
    instance_id: str,
    run_id: str,
    *,
    sweep_every_instance: bool = False,
) -> Acd:
    # Imported here, not at the top: this package's small modules (models, SQL, pure rules)
    # are imported from all over the engine, and must not pull the whole feature in with them.
    from sambung.acd.feature import Acd

    return Acd(config, metrics, instance_id, run_id, sweep_every_instance=sweep_every_instance)


__all__ = ["config", "setup"]
