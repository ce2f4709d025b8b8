"""`python -m <system>`: serve the system, list its dead letters, replay them.

The cyclic garbage collector is paused while a command starts (`startup_gc`): importing the
runtime, its libraries and a system's component modules, and building their pydantic models,
allocates some 80 thousand objects that live as long as the process, among which the
collector found almost nothing (0.4 MB at 100 components) in ~115 collections, ~24 ms of a
server's ~0.5 s of CPU from its start to ready (measured with gc.callbacks). `serve` resumes
it once it serves, with what start-up made frozen (gc.freeze): else the first collection
after the pause would walk all of them at once, and every full collection later again (~40
ms each, the event loop paused meanwhile). The other commands resume it when they end. This
module imports no more than it needs (the system's modules are imported by `build`, inside
`main`), so the pause covers them.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from autocoder_runtime import settings
from autocoder_runtime.logs import LEVELS, configure_logging, resolve_level
from autocoder_runtime.settings import ConfigError

if TYPE_CHECKING:  # imported by `build`, with the collector paused (module docstring)
    from autocoder_runtime.database import Database
    from autocoder_runtime.system import System


def _parser(system: System) -> argparse.ArgumentParser:
    spec = system.spec
    parser = argparse.ArgumentParser(
        prog=f"python -m {spec.name}", description=spec.description or f"the {spec.name} system"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server and every component")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--log-level",
        choices=LEVELS,
        type=str.upper,
        default=None,
        help=f"log level (default: $LOG_LEVEL, else the blueprint's {spec.log_level})",
    )
    serve.add_argument(
        "--ready-fd",
        type=int,
        default=None,
        metavar="FD",
        help="once serving, write the bound port and a newline to this inherited file descriptor"
        " and close it (for a supervisor or test that waits for readiness without polling)",
    )
    letters = sub.add_parser("dead-letters", help="print the dead-letter table as JSON lines")
    letters.add_argument("--limit", type=int, default=100)
    letters.add_argument("--offset", type=int, default=0)
    replay = sub.add_parser(
        "replay", help="move dead letters back into the inbox; a running server delivers them again"
    )
    replay.add_argument("ids", nargs="*", type=int, help="dead-letter ids (default: all)")
    return parser


class CannotOpen(Exception):
    """The system's database cannot be opened; the message is the line to print."""


def _open_database(system: System) -> Database:
    """The system's database, opened; a failure to open it is CannotOpen (one line)."""
    from autocoder_runtime.component import data_dir
    from autocoder_runtime.database import open_database

    try:
        return open_database(system.spec.backend, system.name, data_dir(), os.environ.get("DATABASE_URL"))
    except ConfigError:
        raise
    except Exception as exc:  # whatever the driver raises (sqlite3, psycopg, OSError): one line
        raise CannotOpen(_database_error(system, exc)) from exc


async def _with_database(system: System, command: Callable[[System], object]) -> object:
    import asyncio

    system.db = await asyncio.to_thread(_open_database, system)
    try:
        result = command(system)
        if asyncio.iscoroutine(result):
            result = await result
        return result
    finally:
        await asyncio.to_thread(system.db.close)
        system.db = None


def _database_error(system: System, exc: Exception) -> str:
    """One line for a database that cannot be opened (never the DSN: it may hold a password)."""
    from autocoder_runtime.component import data_dir

    if system.spec.backend == "postgres":
        where, fix = "the PostgreSQL database at DATABASE_URL", "check DATABASE_URL and that the server runs"
    else:
        where = f"the SQLite database under DATA_DIR={str(data_dir())!r}"
        fix = "set DATA_DIR to a directory this user can create and write"
    return f"error: cannot open {where}: {type(exc).__name__}: {exc}; fix: {fix}"


@contextlib.contextmanager
def startup_gc() -> Iterator[Callable[[], None]]:
    """The cyclic garbage collector paused for the block (module docstring), unless it was
    off already; yields `resume`, which freezes what exists by then and turns it back on
    before the block ends (`serve`, once it serves). On in any case when the block ends."""
    was_on = gc.isenabled()
    gc.disable()

    def resume() -> None:
        if was_on and not gc.isenabled():
            gc.freeze()  # start-up's objects: never traversed again (module docstring)
            gc.enable()

    try:
        yield resume
    finally:
        if was_on:
            gc.enable()


def main(build: Callable[[], System], argv: list[str] | None = None) -> int:
    """Run one command; a setting or database the system cannot use is one line on stderr and
    exit 2, never a traceback."""
    try:
        with startup_gc() as resume:
            system = build()
            args = _parser(system).parse_args(argv)
            settings.check()
            if args.command == "serve":
                return _serve_opened(system, args, resume)
            if args.command == "dead-letters":
                return _print_dead_letters(system, args.limit, args.offset)
            import asyncio  # here, with the collector paused (module docstring)

            moved = asyncio.run(_with_database(system, lambda s: s.replay(args.ids or None)))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CannotOpen as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"replayed {moved} dead letter(s) into the inbox", file=sys.stderr)
    return 0


def _serve_opened(system: System, args: argparse.Namespace, on_ready: Callable[[], None]) -> int:
    """`serve` with the database opened here first, without an event loop (none runs yet): a
    failure inside uvicorn's startup would be logged as a traceback, this one is a line. The
    system's start takes this database over instead of opening it a second time; closed here
    when the server ends without a start or stop that closed it."""
    system.db = _open_database(system)
    try:
        return _serve(system, args.host, args.port, args.log_level, args.ready_fd, on_ready)
    finally:
        db, system.db = system.db, None
        if db is not None:
            db.close()


def _serve(
    system: System,
    host: str,
    port: int,
    log_level: str | None,
    ready_fd: int | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    from autocoder_runtime.app import create_app
    from autocoder_runtime.serving import serve
    from autocoder_runtime.telemetry import TelemetryUnavailable, check_installed

    try:
        level = resolve_level(log_level, system.spec.log_level)
        check_installed()
        _check_ready_fd(ready_fd)
    except (ValueError, TelemetryUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(level)
    started = serve(create_app(system), host, port, ready_fd, on_ready)
    return 0 if started else 3  # uvicorn.run's exit status for a start that failed


def _check_ready_fd(fd: int | None) -> None:
    if fd is None:
        return
    try:
        os.fstat(fd)
    except OSError:
        raise ValueError(
            f"--ready-fd {fd} is not an open file descriptor of this process; "
            "fix: pass the write end of a pipe the parent left open for it (Popen pass_fds)"
        ) from None


def _print_dead_letters(system: System, limit: int, offset: int) -> int:
    import asyncio

    rows = asyncio.run(_with_database(system, lambda s: s.database().dead_letter_list(limit, offset)))
    keys = ("id", "ts", "component", "port", "error", "payload", "trace_id")
    for row in rows:  # type: ignore[attr-defined]
        item = dict(zip(keys, row, strict=True)) | {"payload": json.loads(row[5])}
        print(json.dumps(item, sort_keys=True))
    return 0
