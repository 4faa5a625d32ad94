"""An engine installed from the wheel, not run from the checkout, serves a working console.

The wheel built from this tree goes into a fresh virtualenv; its `sambung run` starts against
the real sandbox and a fresh PostgreSQL database, and every file the console's pages load is
fetched over HTTP and compared with what the package installed.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import urllib.request
from pathlib import Path

from sambung.console.assets import page_assets
from tests.integration.adoption_rig import _ready, write_config
from tests.integration.harness import engine_database
from tests.unit.test_install_paths import install_wheel, installed_files


def fetch(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        status: int = r.status
        return status, r.read()


async def test_given_the_installed_wheel_when_it_runs_then_it_serves_every_page_asset(
    tmp_path: Path,
) -> None:
    venv, site = await asyncio.to_thread(install_wheel, tmp_path, with_dependencies=True)
    log = tmp_path / "engine.log"
    async with engine_database() as (url, _pool):
        config, port = write_config(tmp_path, url, instance="installed-wheel")
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            # The console script of the fresh virtualenv, outside the checkout: nothing on its
            # path but the installed package (and, for dependencies, this environment's).
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            proc = await asyncio.create_subprocess_exec(
                str(venv / "bin" / "sambung"),
                "run",
                env={**env, "SAMBUNG_CONFIG": str(config)},
                cwd=tmp_path,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
            )
        finally:
            os.close(fd)
        try:
            deadline = time.monotonic() + 40
            while not await asyncio.to_thread(_ready, port):
                if proc.returncode is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-4000:]
                    raise AssertionError(f"the installed engine did not get ready:\n{tail}")
                await asyncio.sleep(0.2)
            status, html = await asyncio.to_thread(fetch, port, "/console/login")
            assert status == 200
            served = set(re.findall(r"""(?:href|src)="/static/([^"?#]+)""", html.decode()))
            assert served == page_assets(site / "sambung" / "console" / "templates")
            files = installed_files(site)
            for name in sorted(served):
                status, body = await asyncio.to_thread(fetch, port, f"/static/{name}")
                assert status == 200, name
                assert body == files[name].read_bytes(), f"/static/{name} differs from the package"
        finally:
            if proc.returncode is None:
                proc.terminate()  # by its PID: the staged shutdown
            await asyncio.wait_for(proc.wait(), 60)
