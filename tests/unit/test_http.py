from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sambung.engine.errors import BadRequest
from sambung.engine.http import HttpDeps, build_app
from sambung.engine.metrics import build_metrics

TOKEN = "test-token-0123456789"
STATE = web.AppKey("state", dict[str, bool])


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    metrics = build_metrics()
    metrics.ari_connected.set(1)
    state = {"ari": True, "database": False}

    async def record(cid: str) -> dict[str, Any] | None:
        if cid == "boom":
            raise BadRequest("call id 'boom' is not valid")
        if cid == "crash":
            raise RuntimeError("secret internals")
        if cid == "db-away":
            raise ConnectionRefusedError(111, "Connect call failed")
        if cid == "db-bug":
            raise asyncpg.UniqueViolationError("duplicate key value")
        return {"call_id": cid} if cid == "known" else None

    app = build_app(
        HttpDeps(
            tokens=[TOKEN],
            registry=metrics.registry,
            readiness=lambda: dict(state),
            active_calls=lambda: [{"call_id": "c1"}],
            call_record=record,
        )
    )
    app[STATE] = state
    async with TestClient(TestServer(app)) as c:
        yield c


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_health_is_open_and_ready_reflects_dependencies(client: TestClient[Any, Any]) -> None:
    r = await client.get("/health")
    assert r.status == 200
    r = await client.get("/ready")
    assert r.status == 503
    assert (await r.json())["checks"] == {"ari": True, "database": False}
    client.app[STATE]["database"] = True
    r = await client.get("/ready")
    assert r.status == 200


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token-000000000", "Basic abc", "Bearer ", TOKEN]
)
@pytest.mark.parametrize(
    "path", ["/metrics", "/api/v1/calls", "/api/v1/calls/known", "/api/v1/nothing-here"]
)
async def test_given_no_valid_token_then_401_problem_and_nothing_else(
    client: TestClient[Any, Any], header: str | None, path: str
) -> None:
    headers = {"Authorization": header} if header else {}
    r = await client.get(path, headers=headers)
    assert r.status == 401
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    body = await r.json()
    assert body["error_id"] == "api.unauthorized"
    assert "call_id" not in str(body)
    assert "sambung_" not in str(body)


async def test_with_a_token_the_api_answers(client: TestClient[Any, Any]) -> None:
    r = await client.get("/api/v1/calls", headers=AUTH)
    assert (await r.json()) == {"calls": [{"call_id": "c1"}]}
    r = await client.get("/metrics", headers=AUTH)
    assert "sambung_ari_connected 1.0" in await r.text()


@pytest.mark.parametrize(
    ("path", "status", "error_id"),
    [
        ("/api/v1/calls/unknown", 404, "api.not_found"),
        ("/api/v1/calls/boom", 400, "api.bad_request"),
        ("/api/v1/calls/crash", 500, "sambung.internal"),
        ("/api/v1/nothing", 404, "http.404"),
    ],
)
async def test_errors_become_problem_documents_with_stable_ids(
    client: TestClient[Any, Any], path: str, status: int, error_id: str
) -> None:
    r = await client.get(path, headers=AUTH)
    assert r.status == status
    body = await r.json()
    assert body["error_id"] == error_id
    assert body["status"] == status
    assert "secret internals" not in str(body)


async def test_a_database_that_is_away_is_a_503_and_a_database_bug_stays_a_500(
    client: TestClient[Any, Any],
) -> None:
    r = await client.get("/api/v1/calls/db-away", headers=AUTH)
    assert r.status == 503
    body = await r.json()
    assert body["error_id"] == "db.unavailable"
    assert "database is not reachable" in body["detail"]
    r = await client.get("/api/v1/calls/db-bug", headers=AUTH)
    assert r.status == 500
    assert (await r.json())["error_id"] == "sambung.internal"
