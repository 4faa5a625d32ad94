"""An engine in a process of its own, from a JSON file of settings sections (as the harness's
``settings_for`` takes them, plus ``database_url``), so that a test can SIGKILL it like a crash.

    python -m tests.integration.engine_proc <spec.json>

SIGTERM stops it as ``sambung run`` does (the staged shutdown). Logs are JSON lines on stdout.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from sambung.engine.logging import configure_logging
from sambung.engine.main import Engine
from tests.integration.harness import settings_for


async def main(spec: dict[str, Any]) -> None:
    url = str(spec.pop("database_url"))
    settings = settings_for(url, **spec)
    configure_logging("json", "info")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Engine(settings).run(stop)


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
