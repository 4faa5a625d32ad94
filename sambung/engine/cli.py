"""``sambung``: run the engine, migrate the database, check a config, print the version."""

# Expected failures (a bad or missing file, bad settings, PostgreSQL down) end in one line on
# stderr naming what failed and an exit code from EXIT_CODES, never a traceback: an operator
# reads the line, a script reads the code. A traceback still means a bug.

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from sambung import __version__
from sambung.engine.config import Settings, load_settings
from sambung.engine.credentials import check_credentials
from sambung.engine.errors import ConfigError, DatabaseUnavailable, SambungError
from sambung.engine.logging import configure_logging

log = structlog.get_logger("sambung")

EXIT_RUNTIME = 1
EXIT_CONFIG = 2  # argparse's own code for a bad command line, which is the same kind of mistake
EXIT_DATABASE = 3
EXIT_INTERRUPTED = 130
EXIT_CODES = f"""exit codes:
  0    done
  {EXIT_RUNTIME}    the command failed: the engine stopped on an error, a reload or migration
       was refused, the engine is not reachable, the install is broken (a missing file)
  {EXIT_CONFIG}    bad command line, settings, flow or input file (the message names the file,
       the key and what was expected)
  {EXIT_DATABASE}    PostgreSQL is unreachable or refused the command (down, wrong address or
       credentials, schema not migrated: run `sambung migrate`)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
"""


def _fail(code: int, message: str) -> int:
    print(f"sambung: {message}", file=sys.stderr)
    return code


def _database(url: str) -> str:
    """Where the database is, for a message: host:port/name, never the credentials."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "localhost", parts.port or 5432
    except ValueError:  # an unparsable port: the address as far as it can be told
        return "PostgreSQL (the database URL is malformed)"
    return f"PostgreSQL at {host}:{port}/{parts.path.lstrip('/') or '(default)'}"


def _database_failed(settings: Settings, err: BaseException) -> int:
    url = settings.database.url.get_secret_value()
    reason = str(err.__cause__ or err) if isinstance(err, DatabaseUnavailable) else str(err)
    # A driver message may quote the URL back; the password must not reach the terminal. A
    # short password is not masked on its own: it would blank letters out of ordinary words.
    reason = reason.replace(url, "(the database URL)")
    password = urlsplit(url).password
    if password and len(password) >= 8:
        reason = reason.replace(password, "***")
    return _fail(EXIT_DATABASE, f"{_database(url)}: {reason or type(err).__name__}")


def _with_database(settings: Settings, work: Coroutine[Any, Any, int]) -> int:
    """Run a command that needs PostgreSQL; its failures end in one line and EXIT_DATABASE."""
    import asyncpg

    try:
        # A URL the driver cannot even parse is a bad setting, not an unreachable database.
        urlsplit(settings.database.url.get_secret_value()).port  # noqa: B018
    except ValueError as err:
        work.close()  # never started: close it so it is not reported as never awaited
        return _fail(EXIT_CONFIG, f"config error: database.url: a valid URL ({err})")
    try:
        return asyncio.run(work)
    except (
        DatabaseUnavailable,
        OSError,
        TimeoutError,
        OverflowError,  # a port past 65535 in the URL, found only when connecting
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
    ) as err:
        return _database_failed(settings, err)


def _config_path(arg: str | None) -> Path | None:
    value = arg or os.environ.get("SAMBUNG_CONFIG")
    return Path(value) if value else None


def _load(arg: str | None) -> Settings:
    return load_settings(_config_path(arg))


async def _migrate(settings: Settings) -> int:
    from sambung.engine import db

    pool = await db.connect_pool(settings.database.url.get_secret_value(), 1, 1)
    try:
        async with pool.acquire() as conn:
            applied = await db.migrate(conn)
    finally:
        await pool.close()
    print(
        f"migrations applied: {len(applied)}"
        + "".join(f"\n  {m.version:04d}_{m.name}" for m in applied)
    )
    return 0


async def _run(settings: Settings) -> int:
    from sambung.engine.main import Engine

    if settings.console.enabled:
        # Before anything connects: a console whose pages cannot load is a broken install.
        from sambung.console.assets import check_assets

        check_assets()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    engine = Engine(settings)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, engine.request_reload)
    await engine.run(stop)
    return 0


async def _reload(settings: Settings) -> int:
    """Ask the running engine to reload its flows, through its API."""
    import aiohttp

    if not settings.http.api_tokens:
        print(
            "sambung: reload needs an API token in the settings (http.api_tokens)", file=sys.stderr
        )
        return EXIT_CONFIG
    host = "127.0.0.1" if settings.http.host in ("0.0.0.0", "::") else settings.http.host
    url = f"http://{host}:{settings.http.port}/api/v1/flows/reload"
    token = settings.http.api_tokens[0].get_secret_value()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                url, headers={"Authorization": f"Bearer {token}"}, timeout=aiohttp.ClientTimeout(30)
            ) as resp,
        ):
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as err:
        print(f"sambung: cannot reach the engine at {url}: {err}", file=sys.stderr)
        return EXIT_RUNTIME
    if resp.status != 200:
        print(f"sambung: reload refused: {body.get('detail', body)}", file=sys.stderr)
        return EXIT_RUNTIME
    for f in body["flows"]:
        print(f"{f['flow']} {f['version']} dids={','.join(f['dids'])} ({f['file']})")
    return 0


async def _import_list(settings: Settings, campaign: str, path: Path, as_of: date | None) -> int:
    """Import a debtor list straight into the database, with a progress line on stderr."""
    from sambung.dialer import config as dialer_config
    from sambung.dialer.importer import ImportProgress, import_list
    from sambung.engine import db

    chosen = [c for c in dialer_config(settings.dialer).campaigns if c.name == campaign]
    if not chosen:
        names = ", ".join(c.name for c in settings.dialer.campaigns) or "none"
        print(
            f"sambung: no campaign {campaign!r} in the settings (campaigns: {names})",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8-sig")
    except OSError as err:
        print(f"sambung: cannot read {path}: {err.strerror}", file=sys.stderr)
        return EXIT_CONFIG
    except UnicodeDecodeError as err:
        print(f"sambung: {path} is not UTF-8 text (byte {err.start})", file=sys.stderr)
        return EXIT_CONFIG
    tty = sys.stderr.isatty()

    def show(p: ImportProgress) -> None:
        line = (
            f"\rimport {p.import_id}: {p.rows_read} rows read, "
            f"{p.written}/{p.total_records} records written"
        )
        print(line, end="" if tty else "\n", file=sys.stderr, flush=True)

    pool = await db.connect_pool(settings.database.url.get_secret_value(), 1, 2)
    try:
        prog = await import_list(
            pool,
            chosen[0],
            text,
            source=path.name,
            on_progress=show,
            as_of=as_of,
        )
    finally:
        await pool.close()
    if tty:
        print(file=sys.stderr)
    s = prog.summary
    print(
        f"{path.name} -> {campaign}: {s['rows_read']} rows: {s['imported']} new, "
        f"{s['updated']} updated, {s['merged']} merged duplicates, {s['rejected']} rejected, "
        f"{s['suppressed']} suppressed (import {s['import_id']})"
    )
    for p in s["problems"]:
        what = p.get("message") or p.get("reason")
        where = f"line {p['line']}" + (f", {p['column']}" if p.get("column") else "")
        print(f"  {where}: {what}")
    return 0


async def _user_add(settings: Settings, args: argparse.Namespace) -> int:
    """Create a login. The password comes from $SAMBUNG_PASSWORD or the first line of stdin,
    never from the command line, where other users of the machine could read it."""
    import uuid
    from datetime import UTC, datetime

    import asyncpg

    from sambung.auth import passwords, store
    from sambung.auth.model import MIN_PASSWORD, USERNAME, Role

    if not USERNAME.match(args.username):
        print("sambung: the username is 1 to 64 letters, digits or . _ @ -", file=sys.stderr)
        return EXIT_CONFIG
    agents = {a.id for a in settings.acd.agents}
    if args.role == "agent" and not args.agent_id:
        print("sambung: an agent's login needs --agent-id", file=sys.stderr)
        return EXIT_CONFIG
    if args.agent_id and args.agent_id not in agents:
        known = ", ".join(sorted(agents)) or "none"
        print(f"sambung: no agent {args.agent_id!r} in [acd] (agents: {known})", file=sys.stderr)
        return EXIT_CONFIG
    password = os.environ.get("SAMBUNG_PASSWORD") or sys.stdin.readline().rstrip("\n")
    if len(password) < MIN_PASSWORD:
        print(f"sambung: the password needs at least {MIN_PASSWORD} characters", file=sys.stderr)
        return EXIT_CONFIG
    conn = await asyncpg.connect(settings.database.url.get_secret_value())
    try:
        if args.if_missing and await store.get_user(conn, args.username) is not None:
            print(f"user {args.username} exists; left as it is")
            return 0
        try:
            user = await store.insert_user(
                conn,
                args.username,
                await passwords.hash_async(password),
                Role(args.role),
                args.agent_id,
                args.display_name or "",
                args.language,
            )
        except asyncpg.UniqueViolationError:
            print(
                f"sambung: user {args.username!r} (or agent {args.agent_id!r}'s login) exists",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        fact = store.AuditFact(
            uuid.uuid4().hex,
            datetime.now(UTC),
            "cli",
            "admin",
            "user.create",
            user.username,
            "ok",
            None,
            None,
            f'{{"role": "{user.role}"}}',
        )
        await conn.execute(fact.sql, *fact.args())
    finally:
        await conn.close()
    print(
        f"user {user.username} created ({user.role.value}"
        + (f", agent {user.agent_id}" if user.agent_id else "")
        + ")"
    )
    return 0


async def _user_list(settings: Settings) -> int:
    import asyncpg

    from sambung.auth import store

    conn = await asyncpg.connect(settings.database.url.get_secret_value())
    try:
        users = await store.list_users(conn)
    finally:
        await conn.close()
    for u in users:
        flag = " (disabled)" if u.disabled else ""
        print(f"{u.username}\t{u.role.value}\t{u.agent_id or '-'}\t{u.language}{flag}")
    return 0


def _check_config(arg: str | None, settings: Settings, as_of: date | None = None) -> int:
    """The same checks the engine makes at start-up, flows and holiday calendars included."""
    from sambung.console.assets import MissingAsset, check_assets
    from sambung.engine.calendar_config import CalendarBook
    from sambung.engine.main import Engine

    try:
        if settings.console.enabled:
            check_assets()  # as `sambung run` does, so check-config passing means it starts
        engine = Engine(settings)
        table = engine.ivr.load(engine.calendars.current)
    except MissingAsset as err:
        return _fail(EXIT_RUNTIME, f"{err.error_id}: {err.detail}")
    except ConfigError as err:
        print(f"sambung: config error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except SambungError as err:
        print(f"sambung: flow error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    for warning in table.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    # Calendars lapsing within 60 days, or estimated dates coming up, are warnings: the
    # settings are valid, but an operator has something to do before the dialer blocks.
    book = engine.calendars
    if as_of is not None:
        # How the calendars will look on that day (built around it, as an engine would).
        book = CalendarBook(settings.calendars, engine.metrics, today=lambda: as_of)
        book.use(book.load())
    for cw in book.warnings():
        print(f"warning: {cw.text}", file=sys.stderr)
    name = arg or os.environ.get("SAMBUNG_CONFIG") or "(defaults)"
    flows = {f.name for f in table.by_did.values()}
    reach = ", ".join(
        f"{c['calendar']} to {c['covered_until'] or 'today: NOT COVERED'}" for c in book.view()
    )
    print(
        f"{name}: ok, {len(settings.hotlines)} hotline(s), {len(flows)} flow(s), calendars: {reach}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sambung",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sambung {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "run the engine"),
        ("migrate", "apply pending database migrations"),
        ("check-config", "validate a settings file and its flow files, and exit"),
        ("reload", "make the running engine load its flow files and holiday calendars again"),
    ):
        p = sub.add_parser(
            name,
            help=text,
            description=text,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("-c", "--config", help="settings file (TOML); default $SAMBUNG_CONFIG")
        if name == "check-config":
            p.add_argument(
                "--as-of",
                type=date.fromisoformat,
                help="judge the holiday calendars as on this date, YYYY-MM-DD (default today)",
            )
    imp = sub.add_parser("import", help="import a debtor list (CSV) into a campaign")
    imp.add_argument("-c", "--config", help="settings file (TOML); default $SAMBUNG_CONFIG")
    imp.add_argument("--campaign", required=True, help="campaign name from the settings")
    imp.add_argument(
        "--as-of",
        type=date.fromisoformat,
        help="date that days past due count from, YYYY-MM-DD (default today)",
    )
    imp.add_argument("file", type=Path, help="the CSV file (UTF-8, with a header)")
    user = sub.add_parser("user", help="manage console and API logins")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser(
        "add", help="create a login (password from $SAMBUNG_PASSWORD or stdin)"
    )
    add.add_argument("-c", "--config", help="settings file (TOML); default $SAMBUNG_CONFIG")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["agent", "supervisor", "admin"])
    add.add_argument("--agent-id", help="the [acd] agent this login acts as (agents: required)")
    add.add_argument("--display-name", help="the name shown on screens")
    add.add_argument("--language", choices=["id", "en"], default="id")
    add.add_argument("--if-missing", action="store_true", help="do nothing if the user exists")
    ls = user_sub.add_parser("list", help="list logins")
    ls.add_argument("-c", "--config", help="settings file (TOML); default $SAMBUNG_CONFIG")
    sub.add_parser("version", help="print the version (as --version)")
    args = parser.parse_args(argv)

    if args.command == "version":
        print(f"sambung {__version__}")
        return 0
    try:
        settings = _load(args.config)
        if args.command in ("run", "check-config"):
            # Both paths refuse published or weak credentials once anything is reachable
            # beyond loopback, so a file check-config passes also starts.
            check_credentials(settings)
    except ConfigError as err:
        print(f"sambung: config error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.engine.log_format, settings.engine.log_level)
    if args.command == "check-config":
        return _check_config(args.config, settings, args.as_of)
    if args.command == "reload":
        return asyncio.run(_reload(settings))
    try:
        if args.command == "migrate":
            return _with_database(settings, _migrate(settings))
        if args.command == "user" and args.user_command == "add":
            return _with_database(settings, _user_add(settings, args))
        if args.command == "user":
            return _with_database(settings, _user_list(settings))
        if args.command == "import":
            return _with_database(
                settings, _import_list(settings, args.campaign, args.file, args.as_of)
            )
        return asyncio.run(_run(settings))
    except ConfigError as err:  # found while starting: a flow or calendar file
        return _fail(EXIT_CONFIG, f"config error: {err}")
    except SambungError as err:
        log.error("sambung.failed", error_id=err.error_id, detail=err.detail)
        return _fail(EXIT_RUNTIME, f"{err.error_id}: {err.detail}")
    except OSError as err:  # the engine's own resources: a port in use, an unwritable spool
        log.error("sambung.failed", error=str(err))
        return _fail(EXIT_RUNTIME, str(err))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
