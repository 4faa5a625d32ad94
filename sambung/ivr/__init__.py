"""The IVR: hotline flows (menus, input, languages, business hours, CRM lookups) read from
YAML files, run one task per call; and the plain greeting for hotlines without a flow and for
numbers nobody serves.

``config`` converts the shell's settings into the IVR's own frozen config (``IvrConfig`` in
``ivr/model.py``); ``setup`` builds the feature from it; ``Ivr.load`` reads the flow files (a
bad one stops start-up, naming the file, line and key) and ``Ivr.use`` swaps a loaded set in as
one; ``Ivr.start`` attaches the feature to the running engine; ``Ivr.add_routes`` adds its
routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sambung.engine.config import Settings
    from sambung.ivr.feature import Ivr
    from sambung.ivr.model import IvrConfig


def config(settings: Settings) -> IvrConfig:
    # The only way into the converter: the rest of the IVR never reads the shell's settings.
    from sambung.ivr.settings import ivr_config

    return ivr_config(settings)


def setup(config: IvrConfig) -> Ivr:
    # Imported here, not at the top: this package's small modules (models, SQL, pure rules)
    # are imported from all over the engine, and must not pull the whole feature in with them.
    from sambung.ivr.feature import Ivr

    return Ivr(config)


__all__ = ["config", "setup"]
