"""Shared pieces for integration tests: the real Asterisk sandbox, SIPp, an engine in-process.

Nothing here is mocked: the engine talks to the sandbox's ARI and AMI, SIPp places real SIP
calls over loopback, and facts land in a throwaway PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from sambung.engine import db
from sambung.engine.config import Settings, load_settings
from sambung.engine.main import Engine
from tests.dbutil import fresh_database

ROOT = Path(__file__).resolve().parents[2]
SIPP_DIR = ROOT / "tests" / "integration" / "sipp"
ARI_URL = os.environ.get("SAMBUNG_TEST_ARI_URL", "http://127.0.0.1:8088")
ARI_USER = os.environ.get("SAMBUNG_ARI_USER", "sambung")
ARI_PASSWORD = os.environ.get("SAMBUNG_ARI_PASSWORD", "sambung-dev-secret")
TOKEN = "integration-token-0123456789"
# Prometheus's token: the metrics role reads /metrics and nothing else.
METRICS_TOKEN = "integration-metrics-token-0123"
EXAMPLE_HOTLINE = {
    "did": "1500",
    "name": "Collections hotline",
    "language": "en",
    "greeting": ["sound:sambung/welcome", "sound:hello-world"],
}
# A hotline whose greeting lasts long enough (about 6 s) to do things in the middle of a call.
LONG_HOTLINE = {
    "did": "1501",
    "name": "Long greeting",
    "language": "en",
    "greeting": ["sound:sambung/welcome"] * 3,
}


def ari_get(path: str, timeout: float = 2.0) -> Any:
    return ari_request("GET", path, timeout)


def ari_request(method: str, path: str, timeout: float = 2.0) -> Any:
    import json

    req = urllib.request.Request(f"{ARI_URL}/ari{path}", method=method)
    cred = base64.b64encode(f"{ARI_USER}:{ARI_PASSWORD}".encode()).decode()
    req.add_header("Authorization", f"Basic {cred}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def ari_up() -> bool:
    try:
        ari_get("/asterisk/info")
    except OSError:
        return False
    return True


def wait_ari(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ari_up():
            return True
        time.sleep(0.5)
    return False


def settings_for(database_url: str, ari_url: str = ARI_URL, **sections: Any) -> Settings:
    s = load_settings(ROOT / "examples" / "sambung.toml", env={})
    data = s.model_dump(mode="python")
    # SecretStr fields dump as SecretStr objects; unwrap them so the dict validates again.
    data["database"]["url"] = database_url
    data["ari"]["url"] = ari_url
    data["ari"]["password"] = ARI_PASSWORD
    data["ari"]["backoff_initial_seconds"] = 0.2
    data["ari"]["backoff_max_seconds"] = 2.0
    data["ari"]["heartbeat_seconds"] = 2.0
    data["ami"]["secret"] = s.ami.secret.get_secret_value()
    data["http"]["port"] = 0
    data["http"]["api_tokens"] = [TOKEN]
    data["http"]["role_tokens"] = [
        {"name": "prometheus", "token": METRICS_TOKEN, "role": "metrics"}
    ]
    data["engine"]["drain_timeout_seconds"] = 5
    # Foundation tests run the simple hotline on 1500; IVR tests pass their own flows.
    data["ivr"]["flows"] = []
    data["hotlines"] = [EXAMPLE_HOTLINE]
    for agent in data["acd"]["agents"]:
        agent["pin"] = agent["pin"].get_secret_value()
    for section, values in sections.items():
        if isinstance(values, dict):
            data[section].update(values)
        else:
            data[section] = values
    return Settings.model_validate(data)


@dataclass
class RunningEngine:
    engine: Engine
    pool: asyncpg.Pool
    database_url: str

    async def call_row(self, **where: Any) -> asyncpg.Record | None:
        cond = " AND ".join(f"{k} = ${i + 1}" for i, k in enumerate(where)) or "true"
        return await self.pool.fetchrow(
            f"SELECT * FROM calls WHERE {cond} ORDER BY started_at DESC LIMIT 1", *where.values()
        )

    async def wait_closed(self, timeout: float = 30.0, **where: Any) -> asyncpg.Record:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            row = await self.call_row(**where)
            if row is not None and row["ended_at"] is not None:
                return row
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no closed call row for {where} within {timeout}s: {row}")
            await asyncio.sleep(0.2)

    async def wait_open(self, timeout: float = 15.0, **where: Any) -> asyncpg.Record:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            row = await self.call_row(**where)
            if row is not None and row["answered_at"] is not None:
                return row
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no answered call for {where} within {timeout}s")
            await asyncio.sleep(0.1)

    async def wait_connected(self, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.engine.readiness()["ari"]:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("engine did not connect to ARI")
            await asyncio.sleep(0.1)


@asynccontextmanager
async def engine_database() -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A fresh, migrated database and a pool on it; dropped afterwards."""
    async with fresh_database() as url:
        pool = await db.connect_pool(url, 1, 4)
        try:
            async with pool.acquire() as conn:
                await db.migrate(conn)
            yield url, pool
        finally:
            await pool.close()


@asynccontextmanager
async def engine_running(
    database: tuple[str, asyncpg.Pool], ari_url: str = ARI_URL, **sections: Any
) -> AsyncIterator[RunningEngine]:
    """An Engine running in this event loop; stopped (staged shutdown) on exit."""
    url, pool = database
    engine = Engine(settings_for(url, ari_url, **sections))
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop), name="engine-under-test")
    try:
        started = asyncio.create_task(engine.started.wait())
        done, _ = await asyncio.wait(
            {started, task}, timeout=15, return_when=asyncio.FIRST_COMPLETED
        )
        started.cancel()
        if task in done:
            task.result()  # the engine failed to start: raise its error here
        running = RunningEngine(engine, pool, url)
        await running.wait_connected()
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def running_engine(ari_url: str = ARI_URL, **sections: Any) -> AsyncIterator[RunningEngine]:
    async with engine_database() as database, engine_running(database, ari_url, **sections) as r:
        yield r


@dataclass
class SippResult:
    returncode: int
    output: str


async def sipp(
    scenario: str | Path,
    number: str,
    *,
    calls: int = 1,
    timeout: float = 40.0,
    extra: list[str] | None = None,
    workdir: Path | None = None,
    local_port: int = 5070,
) -> SippResult:
    """Run one bounded SIPp UAC against the sandbox's trunk (loopback only)."""
    args = [
        "sipp",
        "-sf",
        str(SIPP_DIR / scenario),
        "-s",
        number,
        "127.0.0.1:5060",
        "-i",
        "127.0.0.1",
        "-p",
        str(local_port),
        "-m",
        str(calls),
        "-l",
        "1",
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        *(extra or []),
    ]
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=workdir or ROOT / "test-artifacts",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout + 10)
    except (TimeoutError, asyncio.CancelledError):
        # Never leave a SIPp behind holding the trunk's port for the next test.
        proc.kill()
        await proc.wait()
        raise
    return SippResult(
        proc.returncode if proc.returncode is not None else -1, out.decode(errors="replace")[-3000:]
    )
