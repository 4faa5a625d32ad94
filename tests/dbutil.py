"""Throwaway PostgreSQL databases for tests.

``DATABASE_URL`` names the server (any database on it); each test that needs a database gets
a new one, created from template0 and dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from sambung.engine.facts import FactWriter

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    return os.environ.get("DATABASE_URL", DEFAULT_SERVER)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@asynccontextmanager
async def fresh_database(prefix: str = "sambung_t") -> AsyncIterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(with_database(server_url(), "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    try:
        yield with_database(server_url(), name)
    finally:
        admin = await asyncpg.connect(with_database(server_url(), "postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def migrated_pool() -> AsyncIterator[asyncpg.Pool]:
    from sambung.engine import db

    async with fresh_database() as url:
        pool = await db.connect_pool(url, 1, 4)
        try:
            async with pool.acquire() as conn:
                await db.migrate(conn)
            yield pool
        finally:
            await pool.close()


@asynccontextmanager
async def running(w: FactWriter) -> AsyncIterator[FactWriter]:
    """The fact writer at work for the block; on the way out, stopped with its spool caught up
    (``close`` is True only when nothing is left unwritten)."""
    task = asyncio.create_task(w.run())
    try:
        yield w
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert w.close()
