from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

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
