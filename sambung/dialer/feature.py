"""The dialer feature object: what ``setup`` builds and the rest of the engine uses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from sambung.acd.model import AcdConfig
from sambung.dialer import store
from sambung.dialer.call import AttemptRunner
from sambung.dialer.http import add_routes
from sambung.dialer.importer import ImportProgress, import_list
from sambung.dialer.model import DialerConfig
from sambung.dialer.phones import InvalidPhone, normalise_phone
from sambung.dialer.service import DialerService, campaign_queue, queue_of
from sambung.engine.calendars import HolidayCalendar
from sambung.engine.db import DB_ERRORS
from sambung.engine.errors import BadRequest, DatabaseUnavailable, NotFound, SambungError
from sambung.engine.metrics import Metrics
from sambung.engine.shell import Shell

if TYPE_CHECKING:
    # Types only: the ACD package imports the dialer's facts and SQL, so importing it here at
    # run time would be circular.
    from sambung.acd.feature import Acd
    from sambung.dialer.call import QueueCalls

log = structlog.get_logger(__name__)

# Every open wallboard asks each second; PostgreSQL is asked at most this often.
PROMISES_CACHE_SECONDS = 5.0


def campaign_queues(acd: AcdConfig, dialer: DialerConfig) -> AcdConfig:
    """The ACD's config with one queue per campaign, and each campaign agent serving it."""
    campaigns = dialer.campaigns
    if not campaigns:
        return acd
    members: dict[str, list[str]] = {a.id: list(a.queues) for a in acd.agents}
    for c in campaigns:
        for a in acd.agents:
            skilled = c.skill is not None and dict(a.skills).get(c.skill, 0) >= c.min_level
            if a.id in c.agents or skilled:
                members[a.id].append(queue_of(c.name))
    return replace(
        acd,
        queues=(*acd.queues, *(campaign_queue(c) for c in campaigns)),
        agents=tuple(replace(a, queues=tuple(members[a.id])) for a in acd.agents),
    )


class Dialer:
    """The dialer as the rest of the engine sees it."""

    def __init__(
        self,
        settings: DialerConfig,
        acd: Acd,
        metrics: Metrics,
        instance_id: str,
        calendars: Mapping[str, HolidayCalendar],
        *,
        sweep_every_instance: bool = False,
    ) -> None:
        self.metrics = metrics
        self.service = DialerService(
            settings,
            acd.service,
            metrics,
            engine_instance=instance_id,
            calendars=calendars,
            sweep_every_instance=sweep_every_instance,
        )
        self._shell: Shell | None = None
        # Asked for every recording; the campaigns are fixed once the engine is built.
        self._campaign_queues = {queue_of(n): n for n in self.service.campaigns}
        self._imports: dict[int, ImportProgress] = {}
        self._promises_today: tuple[float, dict[str, dict[str, Any]]] = (-1e9, {})
        # The dialer's own calls are dispositioned against their campaign's schema, and its
        # live answers an earlier engine left in a campaign's queue are its to carry on.
        acd.desk.claimants.append(self.service.disposition)
        acd.adopters["dialer"] = self.service.adopt

    async def start(self, shell: Shell, queues: QueueCalls) -> None:
        self._shell = shell
        await self.service.start(
            shell.pool,
            shell.dispatcher,
            AttemptRunner(shell.telephony, queues, shell.record, shell.metrics),
            shell.record,
            shell.asterisk_id,
        )

    def taken_over(self, kept: set[str]) -> None:
        """The first connect's takeover is done: close the live answers nobody carried on."""
        self.service.taken_over(kept)

    def add_routes(self, app: web.Application) -> None:
        add_routes(app, self)

    def campaign_of(self, queue: str) -> str | None:
        """The campaign whose live answers wait in this ACD queue."""
        return self._campaign_queues.get(queue)

    def _pool(self) -> Any:
        if self._shell is None:
            raise DatabaseUnavailable("the database is not reachable")
        return self._shell.pool

    # ---- for the API, the console and the wallboard ----------------------------------------

    def campaigns_view(self) -> list[dict[str, Any]]:
        return [self.service.view(n) for n in self.service.campaigns]

    async def campaign_detail(self, name: str) -> dict[str, Any]:
        view = self.service.view(name)
        if self._shell is None:
            return view
        since = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        try:
            async with self._shell.pool.acquire() as conn:
                view["kpis"] = await store.kpis(conn, name, since)
                view["attempts_today"] = await store.outcome_counts(conn, name, since)
                view["records"] = await store.record_counts(conn, name)
        except DB_ERRORS as err:
            view["kpis_error"] = f"database unavailable: {err}"
        return view

    async def previous_promises(self, account_id: str) -> list[dict[str, Any]]:
        """The account's latest promises to pay (the agent's call card)."""
        if self._shell is None or not account_id:
            return []
        async with self._shell.pool.acquire() as conn:
            return await store.promises_of(conn, account_id)

    async def promises_today(self) -> dict[str, dict[str, Any]]:
        """Promises to pay taken today, per campaign (count and amount), cached briefly."""
        loop_now = asyncio.get_running_loop().time()
        at, cached = self._promises_today
        if loop_now - at < PROMISES_CACHE_SECONDS or self._shell is None:
            return cached
        since = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        try:
            async with self._shell.pool.acquire() as conn:
                fresh = await store.promises_by_campaign(conn, since)
        except DB_ERRORS:
            return cached
        self._promises_today = (loop_now, fresh)
        return fresh

    async def start_import(self, name: str, text: str, source: str) -> dict[str, Any]:
        run = self.service.get(name)
        if self._shell is None:
            raise DatabaseUnavailable("the database is not reachable")
        shell = self._shell
        got_id: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def started(import_id: int) -> None:
            if not got_id.done():
                got_id.set_result(import_id)

        def progress(p: ImportProgress) -> None:
            self._imports[p.import_id] = p

        async def work() -> None:
            try:
                await import_list(
                    shell.pool,
                    run.settings,
                    text,
                    source=source,
                    metrics=self.metrics,
                    on_progress=progress,
                    started=started,
                )
            except SambungError as err:
                if not got_id.done():
                    got_id.set_exception(err)
            except DB_ERRORS as err:
                if not got_id.done():
                    got_id.set_exception(DatabaseUnavailable(f"import failed: {err}"))
                log.warning("dialer.import_failed", campaign=name, error=str(err))

        shell.tasks.start(work(), name=f"import-{name}")
        import_id = await got_id
        return {"import_id": import_id, "campaign": name, "state": "running"}

    async def import_status(self, import_id: int) -> dict[str, Any]:
        async with self._pool().acquire() as conn:
            row = await store.import_row(conn, import_id)
        if row is None:
            raise NotFound(f"no import with id {import_id}")
        out: dict[str, Any] = {
            k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()
        }
        out["problems"] = json.loads(row["problems"]) if row["problems"] else []
        live = self._imports.get(import_id)
        if live is not None and row["state"] == "running":
            out["rows_parsed"] = live.rows_read
            out["records_written"] = live.written
            out["records_total"] = live.total_records
        return out

    async def add_dnc(self, phones: list[str], accounts: list[str], reason: str) -> dict[str, Any]:
        pool = self._pool()
        numbers = []
        for i, raw in enumerate(phones):
            try:
                numbers.append(normalise_phone(raw))
            except InvalidPhone as err:
                raise BadRequest(f"phones[{i}] {raw!r}: {err.detail}") from err
        async with pool.acquire() as conn:
            n_p = await store.add_dnc(conn, "phone", numbers, reason)
            n_a = await store.add_dnc(conn, "account", accounts, reason)
        return {"phones": n_p, "accounts": n_a}
