"""Running the API: one uvicorn worker on ``host:port``."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Collection, Iterator

import uvicorn
from fastapi import FastAPI

from sluice.api.app import create_app
from sluice.store import Store

log = logging.getLogger("uvicorn.error")


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` for IPv6) → host and port."""
    host, colon, port = listen.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise ValueError(f"listen address {listen!r} is not in the form host:port")
    if not 0 < int(port) < 65536:
        raise ValueError(f"listen address {listen!r}: the port must be from 1 to 65535")
    return host.removeprefix("[").removesuffix("]"), int(port)


def listen_socket(listen: str) -> socket.socket:
    """A socket bound to ``listen``. Bound before the server starts, so that a busy or unknown
    address is a ValueError naming it: uvicorn would log it and exit the process."""
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # The protocol named, as a socket made from getaddrinfo has it: asyncio turns Nagle's
    # algorithm off only on connections of such a socket, else each response waits ~40 ms.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as err:
        listener.close()
        reason = err.strerror or str(err)
        raise ValueError(f"cannot listen on {listen}: {reason[:1].lower()}{reason[1:]}") from None
    return listener


class ApiServer(uvicorn.Server):
    """uvicorn serving ``app`` on a socket bound beforehand (:func:`listen_socket`)."""

    def __init__(self, app: FastAPI, listener: socket.socket, listen: str) -> None:
        super().__init__(uvicorn.Config(app, server_header=False))
        self.listener = listener
        self.listen = listen

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn says where it listens only on the addresses it binds itself.
        log.info("serving the API on http://%s", self.listen)
        with contextlib.closing(self.listener):
            await super().serve(sockets or [self.listener])


def serve(store_url: str, listen: str, admin_keys: Collection[str]) -> None:
    """Serve the API until interrupted. uvicorn's access log holds no request headers, so
    keys stay out of the logs."""
    with contextlib.closing(listen_socket(listen)) as listener:
        store = Store(store_url)
        try:
            # On Ctrl-C uvicorn stops cleanly, then raises it again for its caller: done.
            with contextlib.suppress(KeyboardInterrupt):
                ApiServer(create_app(store, admin_keys), listener, listen).run()
        finally:
            store.close()


class EmbeddedServer(ApiServer):
    """The API without uvicorn's own signal handling, for a loop that owns the signals (the
    operator, local mode)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def embedded_server(store: Store, listen: str, admin_keys: Collection[str]) -> EmbeddedServer:
    """The API bound to ``listen`` (a busy address raises ValueError here), to run with
    ``await server.serve()`` in the caller's loop; it stops once ``server.should_exit`` is
    set."""
    return EmbeddedServer(create_app(store, admin_keys), listen_socket(listen), listen)
