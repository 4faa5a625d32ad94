"""Where finished recordings live: a small interface, and a local directory behind it.

Keys are relative paths (``2026/08/06/<call id>.wav``). ``put`` is atomic (a reader never sees
half a file) and idempotent (the same key again replaces the object with the same bytes), so a
move retried after a crash is harmless. Blocking file work runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class RecordingStore(Protocol):
    async def put(self, key: str, data: bytes) -> StoredObject:
        """Store ``data`` under ``key`` (atomically); raises OSError when it cannot."""
        ...

    async def stat(self, key: str) -> StoredObject | None:
        """Size and SHA-256 of the object, or ``None`` if there is none."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``start`` to ``end`` (inclusive; ``None``: to the end), in chunks."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove the object; ``False`` if it was not there (idempotent)."""
        ...


class BadKey(ValueError):
    pass


class LocalDirectoryStore:
    """Recordings as files under one directory (``[recordings] store_dir``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"LocalDirectoryStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts) or "\\" in key:
            raise BadKey(f"not a store key: {key!r}")
        return self.root.joinpath(*parts)

    async def put(self, key: str, data: bytes) -> StoredObject:
        path = self._path(key)
        return await asyncio.to_thread(self._put, key, path, data)

    @staticmethod
    def _put(key: str, path: Path, data: bytes) -> StoredObject:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        # The rename itself is durable only once the directory is synced.
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return StoredObject(key, len(data), hashlib.sha256(data).hexdigest())

    async def stat(self, key: str) -> StoredObject | None:
        path = self._path(key)
        return await asyncio.to_thread(self._stat, key, path)

    @staticmethod
    def _stat(key: str, path: Path) -> StoredObject | None:
        digest = hashlib.sha256()
        size = 0
        try:
            with path.open("rb") as fh:
                while block := fh.read(CHUNK):
                    digest.update(block)
                    size += len(block)
        except FileNotFoundError:
            return None
        return StoredObject(key, size, digest.hexdigest())

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(key)
        fh = await asyncio.to_thread(path.open, "rb")
        try:
            await asyncio.to_thread(fh.seek, start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                want = CHUNK if left is None else min(CHUNK, left)
                block = await asyncio.to_thread(fh.read, want)
                if not block:
                    break
                if left is not None:
                    left -= len(block)
                yield block
        finally:
            await asyncio.to_thread(fh.close)

    async def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True
