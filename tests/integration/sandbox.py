"""The integration tests' hold on the sandbox: is it up, bring it back, and run ``ops/sandbox``
so that a failure shows what it printed.

One test that breaks the sandbox (a fault test, a crash) must not fail the tests after it:
``ensure_sandbox`` runs before every integration test (tests/integration/conftest.py) and
``FaultScope`` puts back what a fault test broke, stopping the processes it started by PID.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from tests.dbutil import server_url
from tests.integration.harness import ROOT, ari_up

SANDBOX = ROOT / "ops" / "sandbox"
# `up` may have to build the Asterisk tree (about 2 minutes) or install packages.
UP_TIMEOUT = 900.0
RESTART_TIMEOUT = 300.0


class SandboxError(AssertionError):
    """ops/sandbox failed, or the sandbox is not usable; the message has everything printed."""


def _report(args: Sequence[str], rc: int | None, out: str, err: str, why: str = "") -> str:
    head = f"ops/sandbox {' '.join(args)} " + (f"exited {rc}" if rc is not None else why)
    return (
        f"{head}\n--- stdout ---\n{out.rstrip() or '(nothing)'}"
        f"\n--- stderr ---\n{err.rstrip() or '(nothing)'}"
    )


def run_sandbox(
    *args: str, timeout: float = RESTART_TIMEOUT, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ops/sandbox; with ``check``, a non-zero exit raises with its stdout and stderr."""
    try:
        r = subprocess.run(
            [str(SANDBOX), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr or ""
        raise SandboxError(_report(args, None, out, err, f"timed out after {timeout:.0f} s")) from e
    if check and r.returncode != 0:
        raise SandboxError(_report(args, r.returncode, r.stdout, r.stderr))
    return r


async def run_sandbox_async(
    *args: str, timeout: float = RESTART_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """``run_sandbox`` for a test whose event loop must keep running (an engine in-process)."""
    proc = await asyncio.create_subprocess_exec(
        str(SANDBOX),
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError as e:
        proc.kill()  # by its PID: ops/sandbox itself, never a broad name
        out, err = await proc.communicate()
        why = f"timed out after {timeout:.0f} s"
        o, e2 = out.decode(errors="replace"), err.decode(errors="replace")
        raise SandboxError(_report(args, None, o, e2, why)) from e
    rc = proc.returncode if proc.returncode is not None else -1
    o, e2 = out.decode(errors="replace"), err.decode(errors="replace")
    if rc != 0:
        raise SandboxError(_report(args, rc, o, e2))
    return subprocess.CompletedProcess([str(SANDBOX), *args], rc, o, e2)


def wait_ari(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if ari_up():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def postgres_up(timeout: float = 3.0) -> bool:
    """PostgreSQL answers a query (asked from a thread of its own: callers may be inside an
    event loop, and a sync fixture must not start one on the test's thread)."""
    answer: list[bool] = []

    async def ask() -> None:
        conn = await asyncpg.connect(server_url(), timeout=timeout)
        try:
            answer.append(await conn.fetchval("SELECT 1", timeout=timeout) == 1)
        finally:
            await conn.close()

    def worker() -> None:
        try:
            asyncio.run(ask())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            answer.append(False)

    t = threading.Thread(target=worker, name="postgres-check", daemon=True)
    t.start()
    t.join(timeout + 2)
    return bool(answer and answer[0])


def ensure_sandbox() -> list[str]:
    """Make sure Asterisk's ARI and PostgreSQL answer; bring Asterisk back if it does not.

    Cheap when all is well (one ARI request, one query). Returns what it had to do (empty
    when nothing); raises ``SandboxError`` with the output of every ops/sandbox call made
    when the sandbox cannot be brought back. PostgreSQL is the machine's own server: it is
    waited for, never started or restarted here.
    """
    done: list[str] = []
    # A few seconds first: an Asterisk that a test just restarted is still starting.
    if not wait_ari(5):
        status = run_sandbox("status", check=False, timeout=30)
        reports = [_report(("status",), status.returncode, status.stdout, status.stderr)]
        if status.stdout.startswith("running"):
            ok = wait_ari(20)  # it answered in between
        else:
            if status.stdout.startswith("not running"):
                steps: list[tuple[str, ...]] = [("up",)]
            else:  # alive but ARI silent: restart in place, and if that fails start afresh
                steps = [("restart",), ("down",), ("up",)]
            ok = False
            for step in steps:
                r = run_sandbox(
                    *step, check=False, timeout=UP_TIMEOUT if step == ("up",) else RESTART_TIMEOUT
                )
                reports.append(_report(step, r.returncode, r.stdout, r.stderr))
                done.append(f"ops/sandbox {' '.join(step)} (exit {r.returncode})")
                if r.returncode == 0 and step != ("down",) and wait_ari(30):
                    ok = True
                    break
        if not ok:
            raise SandboxError(
                "the Asterisk sandbox's ARI does not answer and could not be brought back:\n\n"
                + "\n\n".join(reports)
            )
    if not postgres_up():
        deadline = time.monotonic() + 30
        while not postgres_up():
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"PostgreSQL ({server_url()}) does not answer for 30 s; the tests do not "
                    "start or restart it (ops/test's ensure_postgres does)"
                )
            time.sleep(1)
        done.append("waited for PostgreSQL")
    return done


@dataclass
class FaultScope:
    """What a fault test started and broke, put back when it ends (``fault_scope`` fixture)."""

    processes: list[asyncio.subprocess.Process] = field(default_factory=list)

    def track(self, proc: asyncio.subprocess.Process) -> asyncio.subprocess.Process:
        """A process the test started (an engine, a SIPp): stopped by its PID at the end."""
        self.processes.append(proc)
        return proc

    async def stop_processes(self) -> list[int]:
        """SIGTERM each one still running, SIGKILL after 15 s; the PIDs that had to stop."""
        stopped: list[int] = []
        for proc in self.processes:
            if proc.returncode is not None:
                continue
            stopped.append(proc.pid)
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        return stopped

    async def restore(self) -> None:
        stopped = await self.stop_processes()
        try:
            await asyncio.to_thread(ensure_sandbox)
        except SandboxError as e:
            raise SandboxError(f"a fault test left the sandbox broken: {e}") from e
        if stopped:
            # Not a failure (the test may have failed before stopping them), but worth seeing.
            print(f"fault scope: stopped PIDs {stopped}", file=sys.stderr)
