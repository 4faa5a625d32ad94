"""The recordings' durable queue: a JSON-lines journal in the engine's spool folder.

A recording gets a job the moment it starts (so a crash of the engine mid-call still leaves a
trace that the file must be fetched), and every step of the job is appended as a line and
fsynced before the step counts as done: ``recording`` -> ``finished`` (Asterisk has the
file) -> ``stored`` (it is in the recordings store, with size and SHA-256) -> ``indexed``
(PostgreSQL has its row) -> done (Asterisk's copy deleted). At start the journal is replayed
and the unfinished jobs carry on from their last step; the file is then rewritten with only
those, written ahead as engine/facts.py's spool is.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

STAGES = ("recording", "finished", "stored", "indexed", "done", "failed")


@dataclass(frozen=True, slots=True)
class Job:
    name: str  # Asterisk's recording name (the key of the job)
    call_id: str
    segment: int
    agent_id: str
    queue: str
    campaign: str | None
    policy: str
    fmt: str
    started_at: datetime
    stage: str = "recording"
    ended_at: datetime | None = None
    paused_spans: tuple[tuple[float, float], ...] = ()
    store_key: str = ""
    size_bytes: int = 0
    sha256: str = ""
    duration_seconds: float = 0.0
    stored_at: datetime | None = None
    attempts: int = 0
    detail: str = field(default="", compare=False)

    def advance(self, stage: str, **changes: Any) -> Job:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        return replace(self, stage=stage, attempts=0, **changes)


def job_to_json(job: Job) -> str:
    body: dict[str, Any] = {}
    for k, v in asdict(job).items():
        if isinstance(v, datetime):
            body[k] = {"$dt": v.isoformat()}
        elif isinstance(v, tuple):
            body[k] = [list(x) if isinstance(x, tuple) else x for x in v]
        else:
            body[k] = v
    return json.dumps(body, separators=(",", ":"))


def job_from_json(line: str) -> Job:
    data = json.loads(line)
    fields: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict) and "$dt" in v:
            fields[k] = datetime.fromisoformat(v["$dt"])
        elif k == "paused_spans":
            fields[k] = tuple((float(a), float(b)) for a, b in v)
        else:
            fields[k] = v
    return Job(**fields)


class Journal:
    """Append-only job log; the latest line about a name is that job's state."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.jobs: dict[str, Job] = {}

    def replay(self) -> list[Job]:
        """Read the journal; return the unfinished jobs and rewrite the file with only them.

        A torn last line (the process died while writing it) is skipped: the step it recorded
        is simply done again.
        """
        self.jobs = {}
        if self.path.exists():
            for n, line in enumerate(self.path.read_text("utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    job = job_from_json(line)
                except (ValueError, TypeError, KeyError) as err:
                    log.warning("recordings.journal_bad_line", line=n, error=str(err))
                    continue
                self.jobs[job.name] = job
        self.jobs = {k: j for k, j in self.jobs.items() if j.stage not in ("done", "failed")}
        self._rewrite()
        if self.jobs:
            log.info("recordings.journal_replayed", pending=len(self.jobs), file=str(self.path))
        return list(self.jobs.values())

    def write(self, job: Job) -> None:
        """Record the job's new state durably (append + fsync) before anything relies on it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(job_to_json(job) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if job.stage in ("done", "failed"):
            self.jobs.pop(job.name, None)
            if not self.jobs:
                self._rewrite()  # nothing pending: start the file afresh
        else:
            self.jobs[job.name] = job

    def pending(self) -> list[Job]:
        return list(self.jobs.values())

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for job in self.jobs.values():
                fh.write(job_to_json(job) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
