"""The recordings' durable queue (journal) and the local directory store."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sambung.recordings.journal import Job, Journal, job_from_json, job_to_json
from sambung.recordings.storage import BadKey, LocalDirectoryStore

AT = datetime(2026, 8, 6, 9, 30, tzinfo=UTC)


def job(name: str = "sambung/c1", **kw: object) -> Job:
    base = Job(name, "c1", 1, "siti", "support", None, "all", "wav", AT)
    return replace(base, **kw)  # type: ignore[arg-type]


def test_a_job_survives_its_json_line() -> None:
    j = job(stage="stored", ended_at=AT, paused_spans=((1.5, 3.25),), size_bytes=42)
    assert job_from_json(job_to_json(j)) == j


def test_given_a_journal_when_replayed_then_the_latest_state_of_unfinished_jobs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "recordings.jsonl"
    jr = Journal(path)
    jr.write(job("sambung/a"))
    jr.write(job("sambung/b"))
    jr.write(job("sambung/a").advance("finished", ended_at=AT))
    jr.write(job("sambung/b").advance("done"))
    with path.open("a") as fh:
        fh.write('{"name": "sambung/torn", "call')  # the process died mid-line
    again = Journal(path)
    pending = again.replay()
    assert [(j.name, j.stage) for j in pending] == [("sambung/a", "finished")]
    # Rewritten with only what is pending.
    assert len(path.read_text().splitlines()) == 1


def test_when_the_last_job_is_done_the_file_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    jr = Journal(path)
    jr.write(job())
    jr.write(job().advance("done"))
    assert path.read_text() == ""
    assert jr.pending() == []


def test_unknown_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        job().advance("moved")


async def test_local_store_put_stat_read_delete(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "store")
    data = bytes(range(256)) * 1000
    obj = await store.put("2026/08/06/c1.wav", data)
    assert (obj.size, obj.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert await store.stat("2026/08/06/c1.wav") == obj
    assert not list((tmp_path / "store/2026/08/06").glob("*.part"))
    whole = b"".join([b async for b in store.read("2026/08/06/c1.wav")])
    assert whole == data
    part = b"".join([b async for b in store.read("2026/08/06/c1.wav", 70_000, 140_001)])
    assert part == data[70_000:140_002]
    assert await store.delete("2026/08/06/c1.wav")
    assert not await store.delete("2026/08/06/c1.wav")
    assert await store.stat("2026/08/06/c1.wav") is None


@pytest.mark.parametrize("key", ["", "../etc/passwd", "a//b", "a/./b", "a\\b"])
async def test_local_store_refuses_keys_outside_its_folder(tmp_path: Path, key: str) -> None:
    with pytest.raises(BadKey):
        await LocalDirectoryStore(tmp_path).put(key, b"x")
