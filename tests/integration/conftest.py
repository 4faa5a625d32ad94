from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from examples.crm_stub import ACCOUNTS, build_app
from tests.integration.harness import ROOT
from tests.integration.sandbox import FaultScope, SandboxError, ensure_sandbox


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def asterisk_sandbox() -> None:
    """The real Asterisk is needed; ops/test starts it, and ``sandbox_ready`` brings it back
    before each test. Skipping needs an explicit opt-out."""
    if os.environ.get("SAMBUNG_SKIP_INTEGRATION") == "1":
        pytest.skip("SAMBUNG_SKIP_INTEGRATION=1: integration tests skipped on request")
    if shutil.which("sipp") is None:
        pytest.fail("sipp is not installed: run ops/sandbox up (ops/test does)")
    (ROOT / "test-artifacts").mkdir(exist_ok=True)


@pytest.fixture(autouse=True)
def sandbox_ready(asterisk_sandbox: None) -> None:
    """Before each integration test: ARI and PostgreSQL answer, or Asterisk is brought back
    (ops/sandbox up, or restart). If it cannot be, this one test fails, with the output of
    every ops/sandbox call made, and the next test tries again: one broken test never takes
    the rest of the suite down with it."""
    try:
        done = ensure_sandbox()
    except SandboxError as e:
        pytest.fail(f"the sandbox is not usable: {e}", pytrace=False)
    if done:
        print(f"sandbox brought back before this test: {'; '.join(done)}", file=sys.stderr)


@pytest.fixture
async def fault_scope() -> AsyncIterator[FaultScope]:
    """For tests that break things: processes they start (``track``) are stopped by PID, and
    Asterisk and PostgreSQL are up again, when the test ends, whatever its outcome."""
    scope = FaultScope()
    try:
        yield scope
    finally:
        await scope.restore()


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
