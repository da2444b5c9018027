"""A fake server's life on loopback: an aiohttp app on 127.0.0.1 on a free port.

A fake (``FakeBotApi``, ``FakeGraphApi``) subclasses :class:`LoopbackServer`, builds its routes
in :meth:`~LoopbackServer.app`, and is used as ``async with Fake() as fake:``.
"""

from __future__ import annotations

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
