"""An ASGI app served by uvicorn inside a running asyncio program (the live fleet's cart screens and
its SMS gateway), started and stopped by the program instead of owning it.

``uvicorn.run`` and ``Server.serve`` take over the process: they install their own SIGINT/SIGTERM
handlers (the fleet has its own) and block until the server ends. ``AppServer`` instead does what
``serve`` does in three parts: ``start`` binds a loopback socket, runs the app's lifespan and starts
accepting (it returns once the socket listens, so a caller may print its ready line right after);
the main loop runs as a task; ``stop`` asks it to end, waits for open connections to close and the
lifespan to shut down. ``port=0`` takes a free port (read it back from ``port``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import uvicorn


class AppServer:
    """``app`` served on ``host:port`` while started (see the module docstring)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, name: str = "app") -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (the bound port once started)."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Bind, start the app's lifespan and accept connections; ``OSError`` if the port is taken,
        ``RuntimeError`` if the app's start-up failed."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", access_log=False)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)  # what Server.serve does before start-up
        await server.startup(sockets=[sock])
        if server.should_exit:
            sock.close()
            raise RuntimeError(f"{self.name} on {self.url} did not start (see the log)")
        self._server, self._socket = server, sock
        self._task = asyncio.get_running_loop().create_task(
            self._run(server, sock), name=f"serve {self.name}"
        )

    @staticmethod
    async def _run(server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            await server.main_loop()
        finally:
            await server.shutdown(sockets=[sock])
            sock.close()

    async def stop(self) -> None:
        """Stop accepting, let open requests finish, shut the lifespan down (safe to call twice)."""
        server, task = self._server, self._task
        self._server = self._task = self._socket = None
        if server is None or task is None:
            return
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
