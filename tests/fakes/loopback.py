"""A fake server's life on loopback: an aiohttp app on 127.0.0.1 on a free port.

A fake (``FakeBotApi``, ``FakeGraphApi``) subclasses :class:`LoopbackServer`, builds its routes
in :meth:`~LoopbackServer.app`, and is used as ``async with Fake() as fake:``.
"""

from __future__ import annotations

import asyncio
import socket
from types import TracebackType
from typing import Self

from aiohttp import web

__all__ = ["LoopbackServer"]


class LoopbackServer:
    """Start, stop and address a fake served by aiohttp (a mixin: no ``__init__`` of its own,
    so a dataclass may use it too)."""

    _runner: web.AppRunner | None = None
    _port: int = 0

    def app(self) -> web.Application:
        """The fake's routes."""
        raise NotImplementedError

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def close(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def url(self, path: str = "") -> str:
        """``http://127.0.0.1:<port><path>``; the fake must be started."""
        if not self._port:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._port}{path}"


async def raw_post(host: str, port: int, path: str, header: tuple[str, bytes],
                   body: bytes) -> bytes:
    """POST ``body`` as JSON with one header written byte for byte (a value an HTTP client
    library would refuse to send, e.g. not UTF-8); the response's status code."""
    name, value = header
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                 + name.encode() + b": " + value + b"\r\n"
                 + b"Content-Type: application/json\r\nConnection: close\r\n"
                 + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    status = (await reader.readline()).split()[1]
    writer.close()
    return status
