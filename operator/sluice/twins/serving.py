"""Serving a twin over HTTP: in a background thread of the test's process (:func:`serve`), or
as a process of its own (:func:`run_process`, what ``python -m sluice.twins.<app>`` calls), so
that a benchmark's exporter does not share the twin's GIL.

A twin with a ``state_path`` keeps its state in that file: both save it every
:data:`SAVE_SECONDS` when it changed and once more when they stop.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import uvicorn
from starlette.applications import Starlette

#: How often a served twin with a state file saves its state, when it changed.
SAVE_SECONDS = 2.0


class ServedTwin(Protocol):
    """What serving needs of a twin: its Starlette app and, optionally, a state file."""

    state_path: Path | None

    def app(self) -> Starlette: ...

    def save_state_if_changed(self) -> bool: ...


@contextlib.contextmanager
def _saving(twin: ServedTwin) -> Iterator[None]:
    """While the server runs, a thread saves the twin's state every :data:`SAVE_SECONDS` when
    it changed (a killed twin loses at most that much of its writes); on exit it saves once
    more. A thread rather than an asyncio task: a save must not stall the event loop, and the
    loop is uvicorn's, out of reach of :func:`serve`'s caller."""
    if twin.state_path is None:
        yield
        return
    stopped = threading.Event()

    def save_periodically() -> None:
        while not stopped.wait(SAVE_SECONDS):
            try:
                twin.save_state_if_changed()
            except OSError as err:  # a full disk: keep serving, try again next time
                print(f"warning: the twin's state was not saved: {err}", file=sys.stderr)

    saver = threading.Thread(target=save_periodically, name="twin-saver", daemon=True)
    saver.start()
    try:
        yield
    finally:
        stopped.set()
        saver.join(timeout=10)
        twin.save_state_if_changed()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listening socket says TCP, and without it every response waits on a delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _http_implementation() -> str:
    try:
        import httptools  # type: ignore[import-not-found,unused-ignore]  # noqa: F401, PLC0415
    except ImportError:
        return "h11"
    return "httptools"


class _ProcessServer(uvicorn.Server):
    """Stops on SIGTERM or SIGINT and returns: uvicorn's own handling raises the signal again
    once stopped, which would end the process before the twin saves its state."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        def stop(number: int, frame: object) -> None:
            self.should_exit = True

        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, stop)
        yield


def _server(twin: ServedTwin, kind: type[uvicorn.Server] = uvicorn.Server) -> uvicorn.Server:
    config = uvicorn.Config(
        twin.app(),
        log_level="warning",
        access_log=False,
        lifespan="off",
        http=_http_implementation(),
        server_header=False,
    )
    return kind(config)


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def serve(twin: ServedTwin, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run the twin in a background thread; yields its base URL and stops it on exit (saving
    its state, with a ``state_path``)."""
    sock = bind(host, port)
    server = _server(twin)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="twin-server", daemon=True
    )
    with _saving(twin):
        thread.start()
        try:
            yield base_url(sock)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()


def parse_listen(listen: str) -> tuple[str, int]:
    host, colon, port = listen.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{listen!r} is not host:port")
    return host.removeprefix("[").removesuffix("]"), int(port)


def run_process(twin: ServedTwin, host: str, port: int) -> int:
    """Serve ``twin`` until SIGINT or SIGTERM, after printing ``listening on URL`` once its
    socket accepts connections; saves its state on the way out."""
    sock = bind(host, port)
    print(f"listening on {base_url(sock)}", flush=True)
    with _saving(twin):
        _server(twin, _ProcessServer).run(sockets=[sock])
    return 0
