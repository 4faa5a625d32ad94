from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from examples.crm_stub import ACCOUNTS, build_app
from tests.integration.harness import ROOT, wait_ari


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def asterisk_sandbox() -> None:
    """The real Asterisk must be up; ops/test starts it. Skipping needs an explicit opt-out."""
    if os.environ.get("SAMBUNG_SKIP_INTEGRATION") == "1":
        pytest.skip("SAMBUNG_SKIP_INTEGRATION=1: integration tests skipped on request")
    if shutil.which("sipp") is None:
        pytest.fail("sipp is not installed: run ops/sandbox up (ops/test does)")
    if not wait_ari(5):
        pytest.fail(
            "the Asterisk sandbox does not answer on ARI: run ops/sandbox up (ops/test does)"
        )
    (ROOT / "test-artifacts").mkdir(exist_ok=True)


@pytest.fixture
async def crm() -> AsyncIterator[str]:
    """The example stand-in CRM on a free loopback port, for flows with a lookup node."""
    runner = web.AppRunner(build_app(json.loads(ACCOUNTS.read_text())))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
