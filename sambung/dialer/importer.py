"""Importing a debtor list into a campaign: parse, report, merge into the records table.

The same function serves ``sambung dialer import`` and ``POST /api/v1/campaigns/{c}/imports``.
The import is one ``list_imports`` row whose counters move as it goes (a dashboard or the API
shows progress); every rejected or suppressed row is kept in it with its line number and
reason, so nothing leaves the file without a trace:

    rows read = imported + updated + merged within the file + rejected + suppressed

Re-importing an account that is already in the campaign updates its data (name, numbers,
amount, bucket...) and keeps its schedule and attempt count; a record stopped because it was
paid or is on the do-not-call list stays stopped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import structlog

from sambung.dialer import lists
from sambung.dialer.model import CampaignConfig
from sambung.dialer.store import dnc_all
from sambung.engine.db import Conn
from sambung.engine.metrics import Metrics

log = structlog.get_logger(__name__)

BATCH = 500


@dataclass(slots=True)
class ImportProgress:
    import_id: int
    rows_read: int = 0
    written: int = 0
    total_records: int = 0
    state: str = "running"
    summary: dict[str, Any] = field(default_factory=dict)


def spec_for(
    c: CampaignConfig, as_of: date, dnc_numbers: frozenset[str], dnc_accounts: frozenset[str]
) -> lists.ImportSpec:
    return lists.ImportSpec(
        as_of=as_of,
        buckets=tuple((b.name, b.min_days, b.max_days) for b in c.buckets),
        default_zone=c.default_zone,
        default_language=c.default_language,
        dnc_numbers=dnc_numbers,
        dnc_accounts=dnc_accounts,
        phone_types=tuple(c.phone_types),
    )


def _problems(report: lists.ImportReport) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "line": e.line,
            "column": e.column,
            "value": e.value,
            "reason": e.reason_id,
            "message": e.message,
        }
        for e in report.errors
    ]
    out += [
        {"line": s[0], "account_id": s[1], "phone": s[2], "reason": s[3], "suppressed": True}
        for s in report.suppressed
    ]
    return out


async def import_list(
    pool: asyncpg.Pool,
    campaign: CampaignConfig,
    text: str,
    *,
    source: str,
    metrics: Metrics | None = None,
    on_progress: Callable[[ImportProgress], None] | None = None,
    as_of: date | None = None,
    started: Callable[[int], None] | None = None,
) -> ImportProgress:
    """Parse ``text`` (CSV with a header) and merge it into ``campaign``'s records."""
    as_of = as_of or datetime.now(UTC).date()
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO campaigns (name, mode) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            campaign.name,
            campaign.mode,
        )
        import_id = await conn.fetchval(
            """INSERT INTO list_imports (campaign, source, started_at, state)
               VALUES ($1, $2, now(), 'running') RETURNING import_id""",
            campaign.name,
            source[:200],
        )
        dnc_phones, dnc_accounts = await dnc_all(conn)
    prog = ImportProgress(import_id)
    if started is not None:
        started(import_id)
    spec = spec_for(campaign, as_of, dnc_phones, dnc_accounts)

    def parsed(n: int) -> None:
        prog.rows_read = n  # from the parser's thread: a plain int store, read by the loop

    try:
        report = await asyncio.to_thread(
            lists.parse_list, text.splitlines(keepends=False), spec, progress=parsed
        )
    except lists.ListFileError as err:
        await _fail(pool, import_id, err.detail)
        prog.state = "failed"
        prog.summary = {"error": err.detail, "error_id": err.error_id}
        raise
    prog.rows_read = report.total_rows
    prog.total_records = len(report.records)
    if on_progress is not None:
        on_progress(prog)
    created = updated = 0
    async with pool.acquire() as conn:
        for i in range(0, len(report.records), BATCH):
            batch = report.records[i : i + BATCH]
            c, u = await _upsert(conn, campaign.name, import_id, batch)
            created += c
            updated += u
            prog.written = min(len(report.records), i + BATCH)
            await conn.execute(
                "UPDATE list_imports SET rows_read = $2, imported = $3, updated = $4 "
                "WHERE import_id = $1",
                import_id,
                report.total_rows,
                created,
                updated,
            )
            if on_progress is not None:
                on_progress(prog)
        merged_rows = sum(len(m[1]) - 1 for m in report.merged)
        rejected = len(report.rejected_lines)
        # Rows left out because of the do-not-call list (a number taken off a record that
        # still imports is listed in the problems, but the row is not counted here).
        suppressed = sum(1 for s in report.suppressed if s[2] is None)
        problems = _problems(report)
        await conn.execute(
            """UPDATE list_imports SET finished_at = now(), state = 'done', rows_read = $2,
                   imported = $3, updated = $4, merged = $5, rejected = $6, suppressed = $7,
                   problems = $8::jsonb
               WHERE import_id = $1""",
            import_id,
            report.total_rows,
            created,
            updated,
            merged_rows,
            rejected,
            suppressed,
            json.dumps(problems),
        )
    prog.state = "done"
    prog.summary = {
        "import_id": import_id,
        "campaign": campaign.name,
        "rows_read": report.total_rows,
        "imported": created,
        "updated": updated,
        "merged": merged_rows,
        "rejected": rejected,
        "suppressed": suppressed,
        "problems": problems,
    }
    if metrics is not None:
        metrics.dialer_import_rows.labels(campaign=campaign.name, result="imported").inc(
            created + updated
        )
        metrics.dialer_import_rows.labels(campaign=campaign.name, result="merged").inc(merged_rows)
        metrics.dialer_import_rows.labels(campaign=campaign.name, result="rejected").inc(rejected)
        metrics.dialer_import_rows.labels(campaign=campaign.name, result="suppressed").inc(
            suppressed
        )
    if on_progress is not None:
        on_progress(prog)
    log.info(
        "dialer.imported",
        campaign=campaign.name,
        rows=report.total_rows,
        imported=created,
        updated=updated,
        rejected=rejected,
        suppressed=suppressed,
    )
    return prog


async def _fail(pool: asyncpg.Pool, import_id: int, why: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE list_imports SET state = 'failed', finished_at = now(), error = $2 "
            "WHERE import_id = $1",
            import_id,
            why,
        )


async def _upsert(
    conn: Conn,
    campaign: str,
    import_id: int,
    records: Sequence[lists.DebtorRecord],
) -> tuple[int, int]:
    rows = await conn.fetch(
        """INSERT INTO dial_records (campaign, account_id, name, phones, amount_due, due_date,
               days_past_due, bucket, zone, zone_source, language, extra, import_id)
           SELECT $1, x.account_id, x.name, p.phones, x.amount_due, x.due_date,
                  x.days_past_due, x.bucket, x.zone, x.zone_source, x.language, x.extra::jsonb,
                  $2
           FROM unnest($3::text[], $4::text[], $5::text[], $6::numeric[], $7::date[],
                       $8::int[], $9::text[], $10::text[], $11::text[], $12::text[],
                       $13::text[])
                AS x(account_id, name, phones_csv, amount_due, due_date, days_past_due, bucket,
                     zone, zone_source, language, extra)
           CROSS JOIN LATERAL (SELECT string_to_array(x.phones_csv, ',') AS phones) p
           ON CONFLICT (campaign, account_id) DO UPDATE SET
               name = EXCLUDED.name,
               phones = (SELECT coalesce(array_agg(ph), '{}') FROM unnest(EXCLUDED.phones) ph
                         WHERE ph <> ALL (dial_records.bad_phones)),
               amount_due = EXCLUDED.amount_due, due_date = EXCLUDED.due_date,
               days_past_due = EXCLUDED.days_past_due, bucket = EXCLUDED.bucket,
               zone = EXCLUDED.zone, zone_source = EXCLUDED.zone_source,
               language = EXCLUDED.language, extra = EXCLUDED.extra,
               import_id = EXCLUDED.import_id, updated_at = now()
           RETURNING (xmax = 0) AS created""",
        campaign,
        import_id,
        [r.account_id for r in records],
        [r.name for r in records],
        [",".join(r.phones) for r in records],
        [r.amount_due for r in records],
        [r.due_date for r in records],
        [r.days_past_due for r in records],
        [r.bucket for r in records],
        [r.zone for r in records],
        [r.zone_source for r in records],
        [r.language for r in records],
        [json.dumps(dict(r.extra)) for r in records],
    )
    created = sum(1 for r in rows if r["created"])
    return created, len(rows) - created
