"""Logins, sessions, the route policy and the audit log through the engine's HTTP app, against a
real PostgreSQL database (sessions, users and audit rows are read back from it) and a real fact
writer (audit entries travel through it)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from sambung.acd.http import add_routes as add_acd_routes
from sambung.acd.hub import AgentHub
from sambung.auth.http import COOKIE, CSRF_HEADER
from sambung.auth.model import Role
from sambung.auth.ratelimit import Limits
from sambung.auth.routes import ROUTE_POLICY, RoutePolicy
from sambung.auth.service import AuthService, SessionPolicy
from sambung.console import ConsoleServices
from sambung.console.app import Console
from sambung.console.model import ConsoleConfig
from sambung.dialer.http import add_routes as add_dialer_routes
from sambung.engine.errors import NotFound
from sambung.engine.facts import FactWriter
from sambung.engine.http import HttpDeps, RoleToken, build_app
from sambung.engine.metrics import build_metrics
from sambung.ivr.http import add_routes as add_ivr_routes
from sambung.recordings.http import add_routes as add_recording_routes
from sambung.recordings.journal import Journal
from sambung.recordings.model import Policy, Rules, ScopeRules
from sambung.recordings.monitor import MonitorService
from sambung.recordings.service import RecordingService
from sambung.recordings.storage import LocalDirectoryStore
from sambung.wallboard.http import add_routes as add_wallboard_routes
from tests.dbutil import migrated_pool
from tests.unit.test_recordings_fakes import FakeRecordingAri

PASSWORD = "kata-sandi-rahasia-1"
PER_USER = 3
WINDOW = 900.0
LIFETIME = timedelta(hours=8)
IDLE = timedelta(minutes=30)
AGENTS = frozenset({"siti", "made", "andi"})
# The calls each agent handled, as the engine would answer.
HANDLED = frozenset({("c-siti", "siti"), ("c-made", "made")})


@dataclass
class FakeAcd:
    """The engine's ACD side of the API: records what it was asked to do."""

    hub: AgentHub = field(default_factory=AgentHub)
    actions: list[tuple[str, str, str]] = field(default_factory=list)
    dispositions: list[tuple[str, str, str]] = field(default_factory=list)

    def queues_view(self) -> list[dict[str, Any]]:
        return []

    def agents_view(self) -> list[dict[str, object]]:
        return []

    def agent_view(self, agent_id: str) -> dict[str, object]:
        if agent_id not in AGENTS:
            raise NotFound(f"no agent {agent_id!r}")
        return {"agent_id": agent_id, "state": "logged_out"}

    async def handled_by(self, call_id: str, agent_id: str) -> bool:
        return (call_id, agent_id) in HANDLED

    def agent_action(self, agent_id: str, action: str, reason: str = "") -> dict[str, object]:
        self.actions.append((agent_id, action, reason))
        return {"agent_id": agent_id, "action": action}

    def transfer(self, call_id: str, queue: str | None, agent_id: str | None) -> None:
        raise AssertionError("not used here")

    async def disposition(
        self,
        call_id: str,
        agent_id: str,
        code: str,
        note: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.dispositions.append((call_id, agent_id, code))


async def handled_by(call_id: str, agent_id: str) -> bool:
    return (call_id, agent_id) in HANDLED


async def no_record(_: str) -> dict[str, Any] | None:
    return None


async def no_view() -> dict[str, Any]:
    return {}


async def no_reload() -> list[dict[str, object]]:
    return []


class NoCampaigns:
    service = None

    def campaigns_view(self) -> list[dict[str, Any]]:
        return []


def other_features() -> list[Callable[[web.Application], None]]:
    """The dialer's, the IVR's and the wallboard's routes over stand-ins: these tests ask
    who may reach them, never what they answer."""
    return [
        lambda app: add_dialer_routes(app, cast(Any, NoCampaigns())),
        lambda app: add_ivr_routes(app, list, no_reload),
        lambda app: add_wallboard_routes(app, no_view),
    ]


@dataclass
class Stack:
    client: TestClient[Any, Any]
    auth: AuthService
    facts: FactWriter
    pool: asyncpg.Pool
    acd: FakeAcd
    clock: list[float]
    tmp: Path

    async def login(
        self, username: str, password: str = PASSWORD, status: int = 200
    ) -> dict[str, Any]:
        r = await self.client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert r.status == status, await r.text()
        # Each test says how it authenticates: the client must not replay the cookie by itself.
        self.client.session.cookie_jar.clear()
        body: dict[str, Any] = await r.json()
        return body

    async def token(self, username: str, password: str = PASSWORD) -> str:
        return str((await self.login(username, password))["token"])

    async def audit(self) -> list[dict[str, Any]]:
        assert await self.facts.drain(5)
        rows = await self.pool.fetch("SELECT * FROM audit_log ORDER BY at, audit_id")
        return [dict(r) for r in rows]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie(token: str, csrf: str | None = None) -> dict[str, str]:
    headers = {"Cookie": f"{COOKIE}={token}"}
    if csrf is not None:
        headers[CSRF_HEADER] = csrf
    return headers


@contextlib.asynccontextmanager
async def stack(
    tmp_path: Path,
    extra_routes: Callable[[web.Application], None] | None = None,
    limits: Limits | None = None,
    policy: SessionPolicy | None = None,
    acd: Any = None,
    **deps: Any,
) -> AsyncIterator[Stack]:
    """The HTTP app over a fresh database; ``deps`` are further HttpDeps fields."""
    async with migrated_pool() as pool:
        facts = FactWriter(pool, build_metrics(), tmp_path / "spool.jsonl")
        writer = asyncio.create_task(facts.run())
        clock = [1000.0]
        auth = AuthService(
            pool,
            facts,
            policy or SessionPolicy(LIFETIME, IDLE),
            limits or Limits(PER_USER, 1000, WINDOW),
            agent_exists=AGENTS.__contains__,
            clock=lambda: clock[0],
        )
        await auth.create_user("ayu", PASSWORD, Role.ADMIN, display_name="Ayu")
        await auth.create_user("siti", PASSWORD, Role.AGENT, "siti", "Siti")
        await auth.create_user("rina", PASSWORD, Role.SUPERVISOR, display_name="Rina")
        acd = acd or FakeAcd()
        check = deps.pop("session_check_seconds", 15.0)
        features = [lambda app: add_acd_routes(app, acd, auth, check), *other_features()]
        if extra_routes is not None:
            features.append(extra_routes)
        app = build_app(
            HttpDeps(
                **{
                    "tokens": [],
                    "registry": CollectorRegistry(),
                    "readiness": lambda: {},
                    "active_calls": lambda: [],
                    "call_record": no_record,
                    "features": features,
                    "auth": auth,
                    **deps,
                }
            )
        )
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            yield Stack(client, auth, facts, pool, acd, clock, tmp_path)
        finally:
            await client.close()
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)


# ---- login -----------------------------------------------------------------------------------


async def test_login_returns_a_session_and_sets_a_strict_http_only_cookie(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as s:
        before = datetime.now(UTC)
        r = await s.client.post(
            "/api/v1/auth/login",
            json={"username": "siti", "password": PASSWORD},
            headers={"User-Agent": "desk-7"},
        )
        assert r.status == 200
        body = await r.json()
        assert set(body) == {"token", "expires_at", "csrf_token", "user"}
        assert body["user"] == {
            "username": "siti",
            "role": "agent",
            "agent_id": "siti",
            "display_name": "Siti",
            "language": "id",
            "disabled": False,
            "created_at": body["user"]["created_at"],
        }
        expires = datetime.fromisoformat(body["expires_at"])
        assert before + LIFETIME <= expires <= datetime.now(UTC) + LIFETIME

        jar: SimpleCookie = SimpleCookie()
        for header in r.headers.getall("Set-Cookie"):
            jar.load(header)
        morsel = jar[COOKIE]
        assert morsel.value == body["token"]
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Strict"
        assert morsel["path"] == "/"
        assert morsel["max-age"] == str(int(LIFETIME.total_seconds()))
        assert not morsel["secure"]  # cookie_secure is off unless set behind TLS

        # Only the token's hash is stored.
        row = await s.pool.fetchrow("SELECT * FROM user_sessions WHERE username = 'siti'")
        assert row is not None
        assert bytes(row["token_hash"]) == hashlib.sha256(body["token"].encode()).digest()
        assert body["token"] not in {str(v) for v in dict(row).values()}
        assert (row["csrf_token"], row["ip"], row["user_agent"]) == (
            body["csrf_token"],
            "127.0.0.1",
            "desk-7",
        )


async def test_wrong_password_unknown_user_and_disabled_user_get_the_same_answer(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as s:
        await s.auth.create_user("andi", PASSWORD, Role.AGENT, "andi")
        await s.auth.disable_user("andi")
        answers = []
        for username, password in [
            ("siti", "not-the-password"),
            ("nobody", PASSWORD),
            ("andi", PASSWORD),
        ]:
            r = await s.client.post(
                "/api/v1/auth/login", json={"username": username, "password": password}
            )
            assert r.status == 401
            assert "Set-Cookie" not in r.headers
            answers.append(await r.json())
        assert answers[0]["error_id"] == "auth.bad_credentials"
        assert answers[0] == answers[1] == answers[2]
        # A username is matched without regard to case, as people type it.
        assert (await s.login("SITI"))["user"]["username"] == "siti"


async def test_login_body_must_name_a_user_and_a_password(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        for body in ({}, {"username": "siti"}, {"username": "", "password": "x"}, [1, 2]):
            r = await s.client.post("/api/v1/auth/login", json=body)
            assert r.status == 400, body
            assert (await r.json())["error_id"] == "api.bad_request"
        r = await s.client.post("/api/v1/auth/login", data=b"{not json")
        assert r.status == 400


async def test_failed_logins_are_rate_limited_with_retry_after(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        for _ in range(PER_USER):
            await s.login("siti", "wrong-password", status=401)
        s.clock[0] += 100.0
        r = await s.client.post(
            "/api/v1/auth/login", json={"username": "siti", "password": PASSWORD}
        )
        # Refused even with the right password: the guesser must not learn that it was right.
        assert r.status == 429
        assert (await r.json())["error_id"] == "auth.rate_limited"
        assert r.headers["Retry-After"] == str(int(WINDOW - 100.0))
        # Another user from the same address is not held up by siti's failures.
        await s.login("rina")
        s.clock[0] += WINDOW - 100.0
        await s.login("siti")
        rows = [
            (a["actor"], a["outcome"], a["status"])
            for a in await s.audit()
            if a["action"] == "auth.login"
        ]
        assert rows == [
            *[("siti", "failed", 401)] * PER_USER,
            ("siti", "rate_limited", 429),
            ("rina", "ok", 200),
            ("siti", "ok", 200),
        ]


# ---- sessions --------------------------------------------------------------------------------


async def test_a_session_token_works_until_logout(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        token = await s.token("siti")
        r = await s.client.get("/api/v1/auth/me", headers=bearer(token))
        assert r.status == 200
        me = await r.json()
        assert (me["token"], me["user"]["username"], me["user"]["role"]) == (
            "session",
            "siti",
            "agent",
        )
        r = await s.client.post("/api/v1/auth/logout", headers=bearer(token))
        assert r.status == 204
        for _ in range(2):
            r = await s.client.get("/api/v1/auth/me", headers=bearer(token))
            assert r.status == 401
            assert r.headers["WWW-Authenticate"] == 'Bearer realm="sambung"'
            assert (await r.json())["error_id"] == "api.unauthorized"
        r = await s.client.post("/api/v1/auth/logout", headers=bearer(token))
        assert r.status == 401
        row = await s.pool.fetchrow("SELECT ended_at, ended_reason FROM user_sessions")
        assert row is not None
        assert row["ended_at"] is not None
        assert row["ended_reason"] == "logout"


async def test_no_token_or_a_wrong_one_is_refused(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        for headers in (
            {},
            bearer("made-up-token"),
            bearer("x" * 300),
            {"Authorization": f"Basic {PASSWORD}"},
            cookie("made-up-token"),
        ):
            r = await s.client.get("/api/v1/auth/me", headers=headers)
            assert r.status == 401, headers
        # Unknown paths also need a token first: an anonymous caller learns nothing of them.
        r = await s.client.get("/api/v1/no-such-thing")
        assert r.status == 401
        r = await s.client.get("/api/v1/no-such-thing", headers=bearer(await s.token("siti")))
        assert r.status == 404


async def test_expired_and_idle_sessions_are_refused(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        expired, idle, busy, fresh = [await s.token("siti") for _ in range(4)]

        async def set_session(token: str, column: str, at: datetime) -> None:
            th = hashlib.sha256(token.encode()).digest()
            await s.pool.execute(
                f"UPDATE user_sessions SET {column} = $2 WHERE token_hash = $1", th, at
            )

        now = datetime.now(UTC)
        await set_session(expired, "expires_at", now - timedelta(seconds=1))
        await set_session(idle, "last_seen_at", now - IDLE - timedelta(seconds=1))
        await set_session(busy, "last_seen_at", now - IDLE + timedelta(minutes=5))
        for token, status in [(expired, 401), (idle, 401), (busy, 200), (fresh, 200)]:
            r = await s.client.get("/api/v1/auth/me", headers=bearer(token))
            assert r.status == status
        # A request keeps a session alive: the nearly idle one was seen again just now.
        seen = await s.pool.fetchval(
            "SELECT last_seen_at FROM user_sessions WHERE token_hash = $1",
            hashlib.sha256(busy.encode()).digest(),
        )
        assert seen >= now


async def test_cookie_requests_need_the_csrf_token_to_change_anything(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        session = await s.login("ayu")
        token, csrf = session["token"], session["csrf_token"]
        r = await s.client.get("/api/v1/auth/me", headers=cookie(token))
        assert r.status == 200
        assert (await r.json())["user"]["username"] == "ayu"
        new_user = {"username": "made", "password": PASSWORD, "role": "agent", "agent_id": "made"}
        for headers in (cookie(token), cookie(token, ""), cookie(token, csrf + "x")):
            r = await s.client.post("/api/v1/users", json=new_user, headers=headers)
            assert r.status == 403
            assert (await r.json())["error_id"] == "api.forbidden"
        assert await s.pool.fetchval("SELECT count(*) FROM users WHERE username = 'made'") == 0
        r = await s.client.post("/api/v1/users", json=new_user, headers=cookie(token, csrf))
        assert r.status == 201
        # A bearer token is not sent by the browser on its own, so it needs no CSRF token.
        other = {**new_user, "username": "andi", "agent_id": "andi"}
        r = await s.client.post("/api/v1/users", json=other, headers=bearer(token))
        assert r.status == 201
        r = await s.client.post("/api/v1/auth/logout", headers=cookie(token))
        assert r.status == 403
        r = await s.client.post("/api/v1/auth/logout", headers=cookie(token, csrf))
        assert r.status == 204
        r = await s.client.get("/api/v1/auth/me", headers=cookie(token))
        assert r.status == 401


# ---- the route policy ------------------------------------------------------------------------


async def test_an_agent_is_kept_to_their_own_routes_agent_and_calls(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        siti, rina = bearer(await s.token("siti")), bearer(await s.token("rina"))
        for method, path in [
            ("GET", "/api/v1/users"),
            ("POST", "/api/v1/users"),
            ("GET", "/api/v1/campaigns"),
            ("GET", "/api/v1/audit"),
            ("GET", "/api/v1/agents"),
            ("GET", "/metrics"),
            ("POST", "/api/v1/agents/made/ready"),
            ("GET", "/api/v1/agents/made"),
        ]:
            r = await s.client.request(method, path, headers=siti, json={})
            assert r.status == 403, (method, path)
            assert (await r.json())["error_id"] == "api.forbidden"

        r = await s.client.post("/api/v1/agents/siti/pause", json={"reason": "lunch"}, headers=siti)
        assert r.status == 200
        assert s.acd.actions == [("siti", "pause", "lunch")]

        # Dispositions: only on a call the agent handled, and only as themselves.
        url = "/api/v1/calls/{}/disposition"
        r = await s.client.post(url.format("c-made"), json={"code": "PTP"}, headers=siti)
        assert r.status == 403
        r = await s.client.post(url.format("c-unknown"), json={"code": "PTP"}, headers=siti)
        assert r.status == 403
        body = {"code": "PTP", "agent_id": "made"}
        r = await s.client.post(url.format("c-made"), json=body, headers=siti)
        assert r.status == 403
        r = await s.client.post(url.format("c-siti"), json={"code": "PTP"}, headers=siti)
        assert r.status == 201
        assert s.acd.dispositions == [("c-siti", "siti", "PTP")]

        # A supervisor may act for any agent, and must say which.
        r = await s.client.post("/api/v1/agents/made/ready", headers=rina)
        assert r.status == 200
        r = await s.client.post(url.format("c-made"), json={"code": "NA"}, headers=rina)
        assert r.status == 400
        r = await s.client.post(url.format("c-made"), json={**body, "code": "NA"}, headers=rina)
        assert r.status == 201
        assert s.acd.dispositions[-1] == ("c-made", "made", "NA")
        r = await s.client.get("/api/v1/users", headers=rina)
        assert r.status == 403
        # The campaigns route is open to staff.
        r = await s.client.get("/api/v1/campaigns", headers=rina)
        assert r.status == 200

        denied = [
            (a["actor"], a["role"], a["action"], a["status"])
            for a in await s.audit()
            if a["outcome"] == "denied"
        ]
        assert ("siti", "agent", "GET /api/v1/users", 403) in denied
        assert ("siti", "agent", "POST /api/v1/agents/{agent_id}/{action}", 403) in denied
        assert ("siti", "agent", "POST /api/v1/calls/{call_id}/disposition", 403) in denied
        assert ("rina", "supervisor", "GET /api/v1/users", 403) in denied


async def test_a_route_missing_from_the_policy_is_for_admins_only(tmp_path: Path) -> None:
    async def unlisted(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    def routes(app: web.Application) -> None:
        app.router.add_get("/api/v1/unlisted", unlisted)

    async with stack(tmp_path, routes) as s:
        for user, status in [("siti", 403), ("rina", 403), ("ayu", 200)]:
            r = await s.client.get("/api/v1/unlisted", headers=bearer(await s.token(user)))
            assert r.status == status, user


METRICS_TOKEN = "prometheus-scrape-token-0123"
ADMIN_TOKEN = "integration-admin-token-0123"


async def test_a_metrics_token_reads_metrics_and_nothing_else(tmp_path: Path) -> None:
    async with stack(
        tmp_path,
        tokens=[ADMIN_TOKEN],
        role_tokens=[RoleToken("prometheus", METRICS_TOKEN, "metrics")],
    ) as s:
        policy = s.client.app[ROUTE_POLICY]
        scrape = bearer(METRICS_TOKEN)
        r = await s.client.get("/metrics", headers=scrape)
        assert r.status == 200
        assert r.content_type == "text/plain"
        for method, path in sorted(policy.roles):
            if (method, path) == ("GET", "/metrics"):
                continue
            url = re.sub(r"\{[^}]+\}", "x", path)
            r = await s.client.request(method, url, headers=scrape, json={})
            if (method, path) == ("GET", "/api/v1/agents/{agent_id}/events"):
                # The socket takes a ticket, never a bearer token; a ticket needs a role that
                # may ask for one, which this is not (POST /api/v1/auth/ws-ticket is refused).
                assert r.status == 401, (method, path)
                continue
            assert r.status == 403, (method, path)
            assert (await r.json())["error_id"] == "api.forbidden"
        # Nor paths that do not exist: the scraper learns nothing about them.
        r = await s.client.get("/api/v1/no-such-thing", headers=scrape)
        assert r.status == 403
        # An admin token still reads the metrics and manages users.
        admin = bearer(ADMIN_TOKEN)
        assert (await s.client.get("/metrics", headers=admin)).status == 200
        assert (await s.client.get("/api/v1/users", headers=admin)).status == 200
        # A person can never hold the metrics role.
        made = {"username": "made", "password": PASSWORD, "role": "metrics"}
        r = await s.client.post("/api/v1/users", json=made, headers=admin)
        assert r.status == 400
        metrics_routes = [k for k, roles in policy.roles.items() if Role.METRICS in roles]
        assert metrics_routes == [("GET", "/metrics")]


# ---- users -----------------------------------------------------------------------------------


async def test_admins_create_change_and_disable_users(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        ayu = bearer(await s.token("ayu"))
        made = {
            "username": "made",
            "password": PASSWORD,
            "role": "agent",
            "agent_id": "made",
            "display_name": "Made",
            "language": "en",
        }
        r = await s.client.post("/api/v1/users", json=made, headers=ayu)
        assert r.status == 201
        view = await r.json()
        assert {k: view[k] for k in ("username", "role", "agent_id", "language", "disabled")} == {
            "username": "made",
            "role": "agent",
            "agent_id": "made",
            "language": "en",
            "disabled": False,
        }
        stored = await s.pool.fetchval("SELECT password_hash FROM users WHERE username = 'made'")
        assert stored.startswith("$argon2id$")
        assert PASSWORD not in stored

        for body, status, error_id in [
            (made, 409, "auth.user_exists"),
            ({**made, "username": "made2"}, 409, "auth.user_exists"),  # one login per agent
            ({**made, "username": "andi", "agent_id": None}, 422, "auth.user_invalid"),
            ({**made, "username": "andi", "agent_id": "ghost"}, 422, "auth.user_invalid"),
            ({**made, "username": "bad name!"}, 422, "auth.user_invalid"),
            ({**made, "username": "andi", "password": "short"}, 400, "api.bad_request"),
            ({**made, "username": "andi", "role": "root"}, 400, "api.bad_request"),
            ({**made, "username": "andi", "shoe_size": 42}, 400, "api.bad_request"),
            ({"username": "andi", "password": PASSWORD}, 400, "api.bad_request"),
        ]:
            r = await s.client.post("/api/v1/users", json=body, headers=ayu)
            assert r.status == status, body
            assert (await r.json())["error_id"] == error_id, body

        r = await s.client.get("/api/v1/users", headers=ayu)
        assert [u["username"] for u in (await r.json())["users"]] == ["ayu", "made", "rina", "siti"]

        # A new password ends the user's sessions; the old one stops working.
        made_token = await s.token("made")
        r = await s.client.patch(
            "/api/v1/users/made", json={"password": "another-secret-2"}, headers=ayu
        )
        assert r.status == 200
        r = await s.client.get("/api/v1/auth/me", headers=bearer(made_token))
        assert r.status == 401
        await s.login("made", PASSWORD, status=401)
        made_token = await s.token("made", "another-secret-2")

        # Other changes do not end sessions.
        r = await s.client.patch(
            "/api/v1/users/made", json={"display_name": "Made W."}, headers=ayu
        )
        assert (r.status, (await r.json())["display_name"]) == (200, "Made W.")
        r = await s.client.get("/api/v1/auth/me", headers=bearer(made_token))
        assert r.status == 200

        r = await s.client.patch("/api/v1/users/ghost", json={"language": "en"}, headers=ayu)
        assert r.status == 404
        r = await s.client.patch("/api/v1/users/made", json={"username": "x"}, headers=ayu)
        assert r.status == 400

        # Disabling ends the sessions and refuses the login like a wrong password.
        r = await s.client.delete("/api/v1/users/made", headers=ayu)
        assert r.status == 204
        r = await s.client.get("/api/v1/auth/me", headers=bearer(made_token))
        assert r.status == 401
        refused = await s.login("made", "another-secret-2", status=401)
        assert refused["error_id"] == "auth.bad_credentials"
        r = await s.client.get("/api/v1/users", headers=ayu)
        disabled = {u["username"]: u["disabled"] for u in (await r.json())["users"]}
        assert disabled == {"ayu": False, "made": True, "rina": False, "siti": False}
        reasons = await s.pool.fetch(
            "SELECT ended_reason FROM user_sessions WHERE username = 'made' ORDER BY created_at"
        )
        assert [r["ended_reason"] for r in reasons] == ["password_changed", "user_disabled"]

        # An admin cannot lock themselves out.
        r = await s.client.delete("/api/v1/users/ayu", headers=ayu)
        assert r.status == 422


# ---- the audit log ---------------------------------------------------------------------------


async def test_the_audit_log_lists_logins_and_changes_with_who_what_and_where(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as s:
        await s.login("siti", "wrong-password", status=401)
        await s.login("nobody", status=401)
        siti = bearer(await s.token("siti"))
        ayu = bearer(await s.token("ayu"))
        await s.client.get("/api/v1/users", headers=siti)  # denied
        r = await s.client.post(
            "/api/v1/users",
            json={"username": "made", "password": PASSWORD, "role": "agent", "agent_id": "made"},
            headers=ayu,
        )
        assert r.status == 201
        r = await s.client.patch("/api/v1/users/made", json={"language": "en"}, headers=ayu)
        assert r.status == 200
        r = await s.client.delete("/api/v1/users/made", headers=ayu)
        assert r.status == 204
        await s.client.post("/api/v1/auth/logout", headers=siti)
        assert await s.facts.drain(5)

        r = await s.client.get("/api/v1/audit", headers=ayu)
        assert r.status == 200
        entries = (await r.json())["entries"]
        assert all(e["ip"] == "127.0.0.1" for e in entries)
        seen = [
            (e["actor"], e["role"], e["action"], e["target"], e["outcome"], e["status"])
            for e in reversed(entries)  # newest first
        ]
        assert seen == [
            ("siti", "anonymous", "auth.login", "", "failed", 401),
            ("nobody", "anonymous", "auth.login", "", "failed", 401),
            ("siti", "agent", "auth.login", "", "ok", 200),
            ("ayu", "admin", "auth.login", "", "ok", 200),
            ("siti", "agent", "GET /api/v1/users", "/api/v1/users", "denied", 403),
            ("ayu", "admin", "POST /api/v1/users", "/api/v1/users", "ok", 201),
            ("ayu", "admin", "PATCH /api/v1/users/{username}", "/api/v1/users/made", "ok", 200),
            ("ayu", "admin", "DELETE /api/v1/users/{username}", "/api/v1/users/made", "ok", 204),
            ("siti", "agent", "auth.logout", "", "ok", 204),
        ]
        details = {(e["actor"], e["action"]): e["detail"] for e in entries}
        assert details[("nobody", "auth.login")] == {"why": "unknown_user"}
        made = {"params": {"username": "made"}}
        assert details[("ayu", "PATCH /api/v1/users/{username}")] == made
        assert all(e["id"] and datetime.fromisoformat(e["at"]).tzinfo for e in entries)

        r = await s.client.get(
            "/api/v1/audit", params={"actor": "siti", "action": "auth.login"}, headers=ayu
        )
        assert [e["outcome"] for e in (await r.json())["entries"]] == ["ok", "failed"]
        r = await s.client.get("/api/v1/audit", params={"limit": "2"}, headers=ayu)
        assert len((await r.json())["entries"]) == 2
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        r = await s.client.get("/api/v1/audit", params={"since": future}, headers=ayu)
        assert (await r.json())["entries"] == []
        for bad in (
            {"limit": "0"},
            {"limit": "1001"},
            {"limit": "x"},
            {"since": "2026-01-01T00:00"},
        ):
            r = await s.client.get("/api/v1/audit", params=bad, headers=ayu)
            assert r.status == 400, bad


# ---- every route has a policy ------------------------------------------------------------------


def routes_of(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue  # aiohttp adds a HEAD for every GET
        found.add((route.method, route.resource.canonical))
    return found


async def test_every_route_declares_who_may_use_it(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        ari = FakeRecordingAri()
        recordings = RecordingService(
            Rules(ScopeRules(Policy.ALL, 90)),
            ari,
            LocalDirectoryStore(tmp_path / "store"),
            Journal(tmp_path / "recordings.jsonl"),
            s.pool,
            s.facts.record,
        )
        monitor = MonitorService(ari, recordings.talk_of, {}, s.facts.record)
        # Every feature's routes, as the engine adds them (the handlers are not called here).
        api = build_app(
            HttpDeps(
                tokens=[],
                registry=CollectorRegistry(),
                readiness=lambda: {},
                active_calls=lambda: [],
                call_record=no_record,
                features=[
                    lambda app: add_acd_routes(app, FakeAcd(), s.auth),
                    lambda app: add_recording_routes(app, recordings, monitor),
                    *other_features(),
                ],
                auth=s.auth,
            )
        )
        engine_routes = routes_of(api)
        engine_policy = api[ROUTE_POLICY]

    console_app = web.Application()
    services = ConsoleServices(
        agents=cast(Any, None),
        hub=AgentHub(),
        agent_action=lambda a, b, c: {},
        handled_by=handled_by,
        disposition=cast(Any, None),
        dialer=cast(Any, None),
        wallboard=no_view,
        streams=build_metrics().console_streams,
    )
    Console(services, ConsoleConfig()).add_routes(console_app)
    console_routes = routes_of(console_app)
    console_policy = console_app[ROUTE_POLICY]

    def check(policy: RoutePolicy, served: set[tuple[str, str]]) -> None:
        # Each route said who may use it, or that it is open, exactly once.
        assert policy.declared() == served
        assert not policy.open & set(policy.roles)
        for key in policy.own_agent:
            assert key in policy.roles
            assert "{agent_id}" in key[1]
        assert policy.ticketed <= set(policy.roles)
        assert all(roles for roles in policy.roles.values())

    check(engine_policy, engine_routes)
    check(console_policy, console_routes)
    assert not engine_routes & console_routes
    # The console's routes are its pages, forms, streams and assets, and nothing else.
    assert all(k[1] == "/" or k[1].startswith(("/console/", "/static/")) for k in console_routes)
    # The shell's probes and the API description are the only open API routes.
    assert engine_policy.open == {
        ("GET", "/health"),
        ("GET", "/ready"),
        ("GET", "/api/v1/openapi.json"),
        ("POST", "/api/v1/auth/login"),
    }


async def test_a_route_declared_twice_or_with_no_role_is_refused() -> None:
    from sambung.auth.routes import Routes

    async def h(_: web.Request) -> web.Response:
        return web.Response()

    routes = Routes(web.Application())
    routes.get("/x", h, roles={Role.ADMIN})
    with pytest.raises(ValueError, match="declared twice"):
        routes.get("/x", h, roles={Role.AGENT})
    with pytest.raises(ValueError, match="names no role"):
        routes.get("/y", h, roles=())
    with pytest.raises(ValueError, match="own_agent"):
        routes.get("/z", h, roles={Role.AGENT}, own_agent=True)
