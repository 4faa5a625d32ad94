"""The IVR: hotline flows (menus, input, languages, business hours, CRM lookups) read from
YAML files, run one task per call; and the plain greeting for hotlines without a flow and for
numbers nobody serves.

``setup`` builds the feature; ``Ivr.load`` reads the flow files (a bad one stops start-up,
naming the file, line and key) and ``Ivr.use`` swaps a loaded set in as one; ``Ivr.start``
attaches the feature to the running engine; ``Ivr.add_routes`` adds its routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.config import Settings
    from ivr.feature import Ivr


def setup(settings: Settings) -> Ivr:
    # Imported here, not at the top: this package's small modules (models, SQL, pure rules)
    # are imported from all over the engine, and must not pull the whole feature in with them.
    from ivr.feature import Ivr

    return Ivr(settings)


__all__ = ["setup"]
