"""A small fault-injecting TCP proxy for loopback tests.

Sits between the engine and a real server (Asterisk's HTTP/ARI port). ``cut()`` drops every
open connection at once, the way a network blip or a crashed peer would; ``refuse_for()`` also
turns new connections away for a while, so the outage outlasts the client's first retries.
"""

from __future__ import annotations

import asyncio
import contextlib


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._refuse_until = 0.0
        self.accepted = 0
        self.cuts = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._drop_all()
        for t in list(self._pipes):
            t.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    def cut(self) -> None:
        self.cuts += 1
        self._drop_all()

    def refuse_for(self, seconds: float) -> None:
        self._refuse_until = asyncio.get_running_loop().time() + seconds
        self.cut()

    def _drop_all(self) -> None:
        for w in list(self._writers):
            # abort(), not close(): no FIN handshake, like a link that just died.
            w.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if asyncio.get_running_loop().time() < self._refuse_until:
            writer.transport.abort()
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        self._writers.update((writer, up_w))
        a = asyncio.get_running_loop().create_task(self._pipe(reader, up_w))
        b = asyncio.get_running_loop().create_task(self._pipe(up_r, writer))
        self._pipes.update((a, b))
        a.add_done_callback(self._pipes.discard)
        b.add_done_callback(self._pipes.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(dst)
            with contextlib.suppress(Exception):
                dst.transport.abort()
