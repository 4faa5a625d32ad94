"""The ACD: hold queues, skill-based routing to agents, callbacks, agents' states and the
feature codes agents dial on their phones.

``setup`` builds the feature from its settings; ``Acd.start`` attaches it to the running
engine (Asterisk, PostgreSQL, the fact writer); ``Acd.add_routes`` adds its HTTP routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from acd.feature import Acd
    from engine.config import AcdSettings, CallSettings
    from engine.metrics import Metrics


def setup(
    settings: AcdSettings, calls: CallSettings, metrics: Metrics, instance_id: str, run_id: str
) -> Acd:
    # Imported here, not at the top: this package's small modules (models, SQL, pure rules)
    # are imported from all over the engine, and must not pull the whole feature in with them.
    from acd.feature import Acd

    return Acd(settings, calls, metrics, instance_id, run_id)


__all__ = ["setup"]
