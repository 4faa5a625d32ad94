"""Login limits under concurrency, against a real PostgreSQL database.

A limit checked before the (slow) password check but counted only after it lets every attempt
that arrives together through. These tests fire many at once and count the attempts that
reached the password check, by wrapping the verifier; and they run two AuthService instances
("two engines") over one database, whose counts must be shared.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from sambung.auth import passwords
from sambung.auth.model import BadCredentials, RateLimited, Role
from sambung.auth.ratelimit import Limits
from sambung.auth.service import AuthService, SessionPolicy
from sambung.engine import db
from sambung.engine.facts import FactWriter
from sambung.engine.metrics import build_metrics
from tests.component.test_auth_http import AGENTS, PASSWORD, WINDOW, stack
from tests.dbutil import fresh_database

LOGIN = "/api/v1/auth/login"
LIMITS = Limits(per_user=5, per_address=30, window_seconds=WINDOW)


async def until(done: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached in time")


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords that reached the Argon2 check, in order."""
    seen: list[str] = []
    real = passwords.verify

    async def counting(stored: str | None, password: str) -> bool:
        seen.append(password)
        return await real(stored, password)

    monkeypatch.setattr(passwords, "verify", counting)
    return seen


async def test_given_200_concurrent_wrong_logins_for_one_user_then_at_most_5_are_checked(
    tmp_path: Path, checked: list[str]
) -> None:
    async with stack(tmp_path, limits=LIMITS) as s:
        answers = await asyncio.gather(
            *(
                s.client.post(LOGIN, json={"username": "siti", "password": f"wrong-{i}"})
                for i in range(200)
            )
        )
        statuses = Counter(r.status for r in answers)
        assert 1 <= len(checked) <= LIMITS.per_user, statuses
        assert statuses == {401: len(checked), 429: 200 - len(checked)}
        for r in answers:
            if r.status == 429:
                assert (await r.json())["error_id"] == "auth.rate_limited"
                assert int(r.headers["Retry-After"]) >= 1

        # One at a time from here: the attempts of the burst were counted, so only what is
        # left of the limit reaches the check, and then the window's wait is given.
        for i in range(10):
            await s.client.post(LOGIN, json={"username": "siti", "password": f"later-{i}"})
        assert len(checked) == LIMITS.per_user
        r = await s.client.post(LOGIN, json={"username": "siti", "password": PASSWORD})
        assert r.status == 429
        assert 0 < int(r.headers["Retry-After"]) <= WINDOW
        assert len(checked) == LIMITS.per_user


async def test_a_login_is_refused_at_once_when_the_hashing_threads_are_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Argon2 work never queues: with every thread taken, another login gets 429 at once."""
    release = asyncio.Event()
    started = asyncio.Event()
    real = passwords.verify

    async def held(stored: str | None, password: str) -> bool:
        started.set()
        await release.wait()
        return await real(stored, password)

    monkeypatch.setattr(passwords, "verify", held)
    roomy = Limits(5, 30, WINDOW, user_in_flight=10, address_in_flight=10)
    async with stack(tmp_path, limits=roomy) as s:
        busy = [
            asyncio.create_task(
                s.client.post(LOGIN, json={"username": f"u{i}", "password": "wrong-password"})
            )
            for i in range(passwords.HASH_THREADS)
        ]
        await asyncio.wait_for(started.wait(), 5)
        await until(lambda: s.auth.verifications_in_flight >= passwords.HASH_THREADS)
        r = await asyncio.wait_for(
            s.client.post(LOGIN, json={"username": "rina", "password": PASSWORD}), 2
        )
        assert r.status == 429
        problem = await r.json()
        assert problem["error_id"] == "auth.rate_limited"
        # Nobody did anything wrong: the answer says the checks are busy, not "too many".
        assert "other logins are being checked" in problem["detail"]
        assert r.headers["Retry-After"] == "1"
        release.set()
        assert [(await t).status for t in busy] == [401] * passwords.HASH_THREADS
        # Not counted as a failure: rina logs in as soon as a thread is free.
        await s.login("rina")


async def test_checks_in_flight_are_capped_per_user_and_per_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = asyncio.Event()
    real = passwords.verify
    in_check: list[str] = []

    async def held(stored: str | None, password: str) -> bool:
        in_check.append(password)
        await release.wait()
        return await real(stored, password)

    monkeypatch.setattr(passwords, "verify", held)
    limits = Limits(5, 30, WINDOW, user_in_flight=1, address_in_flight=2)
    async with stack(tmp_path, limits=limits) as s:
        s.auth.verify_slots = 10  # the threads are not what limits here
        first = asyncio.create_task(
            s.client.post(LOGIN, json={"username": "siti", "password": "wrong-1"})
        )
        await until(lambda: len(in_check) == 1)
        # The same user again: one check in flight per user.
        r = await s.client.post(LOGIN, json={"username": "SITI", "password": "wrong-2"})
        assert (r.status, r.headers["Retry-After"]) == (429, "1")
        second = asyncio.create_task(
            s.client.post(LOGIN, json={"username": "rina", "password": "wrong-3"})
        )
        await until(lambda: len(in_check) == 2)
        # A third user from the same address: two checks in flight per address.
        r = await s.client.post(LOGIN, json={"username": "ayu", "password": PASSWORD})
        assert (r.status, r.headers["Retry-After"]) == (429, "1")
        release.set()
        assert [(await t).status for t in (first, second)] == [401, 401]
        assert in_check == ["wrong-1", "wrong-3"]
        await s.login("ayu")


# ---- two engines, one database -----------------------------------------------------------------


@contextlib.asynccontextmanager
async def two_engines(
    tmp_path: Path, limits: Limits, clock: list[float] | None = None
) -> AsyncIterator[tuple[list[AuthService], asyncpg.Pool]]:
    """Two AuthService instances, each with its own pool and fact writer, on one database."""
    async with fresh_database() as url:
        pools = [await db.connect_pool(url, 1, 8) for _ in range(2)]
        async with pools[0].acquire() as conn:
            await db.migrate(conn)
        writers = [
            FactWriter(p, build_metrics(), tmp_path / f"spool-{i}") for i, p in enumerate(pools)
        ]
        tasks = [asyncio.create_task(w.run()) for w in writers]
        now = clock if clock is not None else [1000.0]
        engines = [
            AuthService(
                p,
                w,
                SessionPolicy(),
                limits,
                agent_exists=AGENTS.__contains__,
                clock=lambda: now[0],
            )
            for p, w in zip(pools, writers, strict=True)
        ]
        for e in engines:
            # Enough room in each engine that only the shared counts can hold the line.
            e.verify_slots = 1000
        await engines[0].create_user("siti", PASSWORD, Role.AGENT, "siti")
        try:
            yield engines, pools[0]
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for p in pools:
                await p.close()


async def outcomes(attempts: list[Awaitable[object]]) -> Counter[str]:
    got: Counter[str] = Counter()
    for r in await asyncio.gather(*attempts, return_exceptions=True):
        got[type(r).__name__] += 1
    return got


async def test_two_engines_sharing_the_database_never_pass_the_per_user_limit_together(
    tmp_path: Path, checked: list[str]
) -> None:
    roomy = Limits(5, 30, WINDOW, user_in_flight=1000, address_in_flight=1000)
    async with two_engines(tmp_path, roomy) as (engines, _):

        def attempt(i: int) -> Awaitable[object]:
            return engines[i % 2].login("siti", f"wrong-{i}", "10.1.2.3", None)

        got = await outcomes([attempt(i) for i in range(100)])
        assert len(checked) == roomy.per_user
        assert got == {"BadCredentials": 5, "RateLimited": 95}
        # One at a time, alternating: still refused on both.
        for i in range(4):
            with pytest.raises(RateLimited) as refused:
                await attempt(i)
            assert 0 < refused.value.retry_after <= WINDOW
        assert len(checked) == roomy.per_user
        # Another address is its own key.
        with pytest.raises(BadCredentials):
            await engines[1].login("siti", "wrong", "10.9.9.9", None)


async def test_two_engines_sharing_the_database_never_pass_the_per_address_limit_together(
    tmp_path: Path, checked: list[str]
) -> None:
    roomy = Limits(5, 30, WINDOW, user_in_flight=1000, address_in_flight=1000)
    async with two_engines(tmp_path, roomy) as (engines, _):
        got = await outcomes(
            [engines[i % 2].login(f"user{i}", "wrong", "10.1.2.3", None) for i in range(120)]
        )
        assert len(checked) == roomy.per_address
        assert got == {"BadCredentials": 30, "RateLimited": 90}


async def test_a_success_clears_the_users_count_on_every_engine(
    tmp_path: Path, checked: list[str]
) -> None:
    async with two_engines(tmp_path, LIMITS) as ((a, b), pool):
        for _ in range(LIMITS.per_user - 1):
            with pytest.raises(BadCredentials):
                await a.login("siti", "wrong", "10.1.2.3", None)
        await b.login("siti", PASSWORD, "10.1.2.3", None)
        for _ in range(LIMITS.per_user):
            with pytest.raises(BadCredentials):
                await a.login("siti", "wrong", "10.1.2.3", None)
        with pytest.raises(RateLimited):
            await b.login("siti", PASSWORD, "10.1.2.3", None)
        # The success is not counted against the address; the failures are.
        counted = await pool.fetchval(
            "SELECT cardinality(attempts) FROM login_attempts WHERE username = '' AND address = $1",
            "10.1.2.3",
        )
        assert counted == 2 * LIMITS.per_user - 1


async def test_old_attempts_are_purged_from_the_shared_table(tmp_path: Path) -> None:
    clock = [1000.0]
    async with two_engines(tmp_path, LIMITS, clock) as ((a, _), pool):
        for i in range(3):
            with pytest.raises(BadCredentials):
                await a.login(f"user{i}", "wrong", f"10.0.0.{i}", None)
        assert await pool.fetchval("SELECT count(*) FROM login_attempts") == 6
        clock[0] += WINDOW - 1
        assert await a.purge_login_attempts() == 0
        clock[0] += 1
        assert await a.purge_login_attempts() == 6
        assert await pool.fetchval("SELECT count(*) FROM login_attempts") == 0
