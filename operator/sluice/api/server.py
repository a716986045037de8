"""Running the API: one uvicorn worker on ``host:port``."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator

import uvicorn

from sluice.api.app import create_app
from sluice.store import Store


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` for IPv6) → host and port."""
    host, colon, port = listen.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise ValueError(f"listen address {listen!r} is not in the form host:port")
    if not 0 < int(port) < 65536:
        raise ValueError(f"listen address {listen!r}: the port must be from 1 to 65535")
    return host.removeprefix("[").removesuffix("]"), int(port)


def serve(store_url: str, listen: str, admin_keys: Collection[str]) -> None:
    """Serve the API until interrupted. uvicorn's access log holds no request headers, so
    keys stay out of the logs."""
    host, port = parse_listen(listen)
    store = Store(store_url)
    try:
        app = create_app(store, admin_keys)
        uvicorn.run(app, host=host, port=port, workers=1, server_header=False)
    finally:
        store.close()


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling, for a loop that owns the signals (the operator,
    local mode)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def embedded_server(store: Store, listen: str, admin_keys: Collection[str]) -> EmbeddedServer:
    """The API on ``listen``, to run with ``await server.serve()`` in the caller's loop; it
    stops once ``server.should_exit`` is set."""
    host, port = parse_listen(listen)
    config = uvicorn.Config(
        create_app(store, admin_keys), host=host, port=port, server_header=False
    )
    return EmbeddedServer(config)
