"""The engine's OpenAPI description (sambung/engine/openapi.yaml) against the engine itself.

1. It is a valid OpenAPI document, and the engine serves it (as JSON, without a token).
2. It describes exactly the routes the engine registers, method for method (the web
   console's pages apart: they are HTML for browsers, not the API).
3. schemathesis, run against a live engine (fake ARI, real PostgreSQL), finds no 5xx and no
   answer that breaks the description: wrong status, wrong content type or a body that does
   not fit its schema.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import struct
import sys
import time
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from openapi_spec_validator import validate

from sambung.engine.http import PROBLEM, HttpDeps, build_app
from sambung.engine.openapi import document
from tests.fakes.fake_ari import FakeAri
from tests.integration.harness import EXAMPLE_HOTLINE, RunningEngine, running_engine

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# The routes of the auth feature (auth/http.py: logins, users, the audit log) and the wallboard
# it goes with. A tree without auth/http.py cannot serve them; with it, the engine must, like
# every other route.
PENDING_AUTH_ROUTES = frozenset(
    {
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/logout"),
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
        ("PATCH", "/api/v1/users/{username}"),
        ("DELETE", "/api/v1/users/{username}"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/wallboard"),
    }
)
AUTH_FEATURE = ROOT / "sambung" / "auth" / "http.py"
# A WebSocket upgrade: schemathesis speaks plain HTTP.
WEBSOCKET = ("GET", "/api/v1/agents/{agent_id}/events")
# Logging in with made-up passwords would only fill the failed-login limiter.
LOGIN = ("POST", "/api/v1/auth/login")

# Bounded and seeded, so that a run is repeatable and takes about a minute.
SEED = 20260101
MAX_EXAMPLES = 100
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",
)
SCHEMATHESIS_TIMEOUT = 170.0

# What the live engine holds while schemathesis runs, so that reads return real rows (the
# description's examples name them).
DONE_CALL = "1700000000.11"
LIVE_CALL = "1700000000.12"
RECORDING = DONE_CALL  # a call's first recording is named by its call id
HOTLINE_DID = str(EXAMPLE_HOTLINE["did"])
DEBTORS = (
    "account_id,name,phone1,amount_due,days_past_due\n"
    "ACC-1001,Budi Santoso,081234567890,1250000,30\n"
    "ACC-1002,Row With A Bad Number,12,500000,10\n"
)


def described() -> dict[tuple[str, str], dict[str, Any]]:
    ops: dict[tuple[str, str], dict[str, Any]] = {}
    for path, item in document()["paths"].items():
        for method in METHODS:
            if method in item:
                ops[(method.upper(), path)] = item[method]
    return ops


def console_page(path: str) -> bool:
    """The web console: HTML pages, forms and event streams for browsers, not the API."""
    return path == "/" or path.startswith(("/console/", "/static/"))


def served(app: web.Application) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for route in app.router.routes():
        resource = route.resource
        # aiohttp answers HEAD for every GET route by itself; it is not part of the API.
        if resource is None or route.method == "HEAD" or console_page(resource.canonical):
            continue
        out.add((route.method, resource.canonical))
    return out


@asynccontextmanager
async def live_engine(
    fake_ari: FakeAri, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[tuple[RunningEngine, web.Application]]:
    """An engine on a free port, and the aiohttp app it serves (taken as it is built)."""
    apps: list[web.Application] = []

    def keep(deps: HttpDeps) -> web.Application:
        app = build_app(deps)
        apps.append(app)
        return app

    monkeypatch.setattr("sambung.engine.main.build_app", keep)
    async with running_engine(
        fake_ari.base_url,
        ami={"enabled": False},
        engine={"spool_dir": tmp_path / "spool"},
        recordings={"store_dir": tmp_path / "recordings"},
        hotlines=[EXAMPLE_HOTLINE],
    ) as run:
        assert len(apps) == 1
        yield run, apps[0]


def test_the_description_is_valid_openapi() -> None:
    doc = document()
    validate(doc)
    assert doc["openapi"].startswith("3.1.")
    for (method, path), op in described().items():
        where = f"{method} {path}"
        assert op.get("operationId"), f"{where} has no operationId"
        responses = op.get("responses", {})
        assert responses, f"{where} describes no response"
        if op.get("security", doc["security"]):
            # Any token may be refused, and a session token cannot be checked without PostgreSQL.
            assert {"401", "403", "503"} <= set(responses), f"{where}: token route"
        for status, response in responses.items():
            # Errors are problem documents; the readiness probe's 503 is its own report.
            if int(status) >= 400 and (method, path, status) != ("GET", "/ready", "503"):
                if "$ref" in response:
                    response = doc["components"]["responses"][response["$ref"].split("/")[-1]]
                assert set(response["content"]) == {PROBLEM}, f"{where} {status}"


async def test_the_description_names_exactly_the_routes_the_engine_serves(
    fake_ari: FakeAri, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with live_engine(fake_ari, monkeypatch, tmp_path) as (_, app):
        routes = served(app)
    ops = set(described())
    assert ops >= PENDING_AUTH_ROUTES
    assert sorted(routes - ops) == [], "routes the description leaves out"
    absent = ops - routes
    if not AUTH_FEATURE.exists():
        absent -= PENDING_AUTH_ROUTES
    assert sorted(absent) == [], "described routes the engine does not serve"


def _wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack("<h", 0) * int(seconds * rate))
    return buf.getvalue()


async def _seed(
    run: RunningEngine, fake_ari: FakeAri, store: Path, api: Callable[..., Any]
) -> None:
    """A finished call, one in progress, a recording with its file, and a list import."""
    await fake_ari.inbound_call(DONE_CALL, did=HOTLINE_DID)
    await run.wait_closed(call_id=DONE_CALL, timeout=10)
    fake_ari.playback_duration = 600.0
    await fake_ari.inbound_call(LIVE_CALL, did=HOTLINE_DID)
    await run.wait_open(call_id=LIVE_CALL, timeout=10)

    audio = _wav()
    key = f"2026/01/02/{RECORDING}.wav"
    (store / key).parent.mkdir(parents=True, exist_ok=True)
    (store / key).write_bytes(audio)
    await run.pool.execute(
        """INSERT INTO recordings (name, call_id, segment, agent_id, queue, campaign, policy,
               started_at, ended_at, duration_seconds, size_bytes, sha256, format, store_key,
               paused_spans, stored_at)
           VALUES ($1, $2, 1, 'siti', 'collections', NULL, 'all',
               now() - interval '2 minutes', now() - interval '1 minute', 0.5, $3, $4, 'wav', $5,
               '[[0.1, 0.2]]'::jsonb, now())""",
        f"sambung/{RECORDING}",
        DONE_CALL,
        len(audio),
        hashlib.sha256(audio).hexdigest(),
        key,
    )
    await run.pool.execute(
        """INSERT INTO recording_audit (audit_id, at, principal, role, action, name, call_id,
               range_start, range_end, status, detail)
           VALUES ('seed-1', now(), 'sari', 'supervisor', 'download', $1, $2, 0, 99, 206, '')""",
        f"sambung/{RECORDING}",
        DONE_CALL,
    )

    status, body = await api("POST", "/api/v1/campaigns/kolek-30/imports", DEBTORS, "text/csv")
    assert status == 202, body
    import_id = body["import_id"]
    deadline = time.monotonic() + 10
    while True:
        status, body = await api("GET", f"/api/v1/imports/{import_id}")
        assert status == 200, body
        if body["state"] != "running":
            break
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.1)
    assert body["state"] == "done", body
    assert (body["imported"], body["rejected"]) == (1, 1), body


async def test_schemathesis_finds_no_server_error_and_no_answer_off_the_description(
    fake_ari: FakeAri, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with live_engine(fake_ari, monkeypatch, tmp_path) as (run, app):
        port = run.engine.http_port
        token = run.engine.settings.http.api_tokens[0].get_secret_value()
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:

            async def api(
                method: str, path: str, body: str | None = None, ctype: str = "application/json"
            ) -> tuple[int, Any]:
                async with session.request(
                    method, base + path, data=body, headers={"Content-Type": ctype}
                ) as r:
                    return r.status, await r.json(content_type=None)

            # Open: no token.
            async with aiohttp.request("GET", f"{base}/api/v1/openapi.json") as r:
                assert r.status == 200
                assert r.content_type == "application/json"
                assert await r.json() == document()
            await _seed(run, fake_ari, tmp_path / "recordings", api)

            routes = served(app)
            ops = described()
            skipped = {WEBSOCKET, LOGIN} | (set(ops) - routes)
            assert skipped - {WEBSOCKET, LOGIN} <= PENDING_AUTH_ROUTES
            ARTIFACTS.mkdir(exist_ok=True)
            junit = ARTIFACTS / "schemathesis-openapi.xml"
            args = [
                str(SCHEMATHESIS),
                "run",
                f"{base}/api/v1/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                ",".join(CHECKS),
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                str(SEED),
                "--generation-database",
                "none",
                "--workers",
                "1",
                "--request-timeout",
                "10",
                "--continue-on-failure",
                "--no-color",
                "--report",
                "junit",
                "--report-junit-path",
                str(junit),
            ]
            for key in sorted(skipped):
                args += ["--exclude-operation-id", str(ops[key]["operationId"])]
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                *args,
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env={**os.environ, "NO_COLOR": "1"},
            )
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), SCHEMATHESIS_TIMEOUT)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise
            text = out.decode(errors="replace")
            print(text[-6000:])
            print(f"schemathesis took {time.monotonic() - started:.0f} s; JUnit: {junit}")
            await fake_ari.caller_hangup(LIVE_CALL)
    assert proc.returncode == 0, text[-20000:]
