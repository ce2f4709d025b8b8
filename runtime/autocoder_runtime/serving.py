"""Running the app under uvicorn, and saying when it serves: `serve --ready-fd FD` writes the
bound port to an inherited file descriptor once the system has started and its socket listens,
so a supervisor or a test waits on a pipe instead of polling /readyz (imported by `serve` only:
uvicorn is not needed by the other commands)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette


class ReadyServer(uvicorn.Server):
    """uvicorn's server, which writes `<port>\\n` to `ready_fd` and closes it when it serves:
    after the app's lifespan started the system (so /readyz answers 200) and the socket
    listens. `on_ready` is called then, before the port is written (the CLI resumes the
    garbage collector it paused for the start-up)."""

    def __init__(
        self, config: uvicorn.Config, ready_fd: int | None, on_ready: Callable[[], None] | None = None
    ) -> None:
        super().__init__(config)
        self.ready_fd = ready_fd
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_ready is not None:
            on_ready, self.on_ready = self.on_ready, None
            on_ready()
        if self.started and self.ready_fd is not None:
            fd, self.ready_fd = self.ready_fd, None
            listening = [s for server in self.servers for s in server.sockets]
            port = listening[0].getsockname()[1] if listening else 0
            with contextlib.suppress(OSError):  # the reader is gone: nobody waits for it
                os.write(fd, f"{port}\n".encode())
                os.close(fd)


def serve(
    app: Starlette,
    host: str,
    port: int,
    ready_fd: int | None = None,
    on_ready: Callable[[], None] | None = None,
) -> bool:
    """Serve `app` until SIGTERM or SIGINT (uvicorn's graceful stop); whether it started.
    No WebSocket protocol (ws="none"): the app has no WebSocket route, and uvicorn would
    otherwise import the websockets library at start wherever it is installed."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=15,
        ws="none",
    )
    server = ReadyServer(config, ready_fd, on_ready)
    server.run()
    return bool(server.started)
