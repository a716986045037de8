"""The test harness's throw-away PostgreSQL server (tests/postgres.py, tests/conftest.py)."""

from __future__ import annotations

import errno
import socket
import struct
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.postgres import (
    ci_requires_postgres,
    postgres_server,
    postgres_unavailable_reason,
    process_alive,
    temporary_database,
)


def test_round_trip_through_sqlalchemy(postgres_database: str) -> None:
    engine = sa.create_engine(postgres_database)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL)"))
            conn.execute(
                sa.text("INSERT INTO items (id, name) VALUES (:id, :name)"),
                [{"id": 1, "name": "ä-unicode"}, {"id": 2, "name": "two"}],
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, name FROM items ORDER BY id")).all()
            encoding = conn.execute(sa.text("SHOW server_encoding")).scalar_one()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "ä-unicode"), (2, "two")]
    assert encoding == "UTF8"


def test_databases_are_isolated(postgres_url: str, postgres_database: str) -> None:
    with temporary_database(postgres_url) as other_database:
        assert sa.make_url(other_database).database != sa.make_url(postgres_database).database
        first = sa.create_engine(postgres_database)
        second = sa.create_engine(other_database)
        try:
            with first.begin() as conn:
                conn.execute(sa.text("CREATE TABLE only_here (id integer)"))
            with second.connect() as conn:
                tables = conn.execute(
                    sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                ).all()
                # The same name is free in the other database.
                conn.execute(sa.text("CREATE TABLE only_here (id integer)"))
                conn.commit()
        finally:
            first.dispose()
            second.dispose()
    assert tables == []


def test_database_is_dropped_afterwards_even_with_open_connections(postgres_url: str) -> None:
    with temporary_database(postgres_url) as url:
        name = sa.make_url(url).database
        leaked = sa.create_engine(url, poolclass=sa.NullPool).connect()  # left open on purpose
        leaked.execute(sa.text("SELECT 1"))
    admin = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar_one()
    finally:
        admin.dispose()
        leaked.invalidate()
    assert exists == 0


def test_server_listens_on_127_0_0_1_only(postgres_url: str) -> None:
    url = sa.make_url(postgres_url)
    assert url.host == "127.0.0.1"
    assert url.port is not None
    engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            listen_addresses = conn.execute(sa.text("SHOW listen_addresses")).scalar_one()
            server_addr = conn.execute(sa.text("SELECT host(inet_server_addr())")).scalar_one()
    finally:
        engine.dispose()
    assert listen_addresses == "127.0.0.1"
    assert server_addr == "127.0.0.1"

    # Other loopback addresses reach the same machine but not this server: it is bound to
    # 127.0.0.1 alone, not to every address.
    assert _refuses(socket.AF_INET, "127.0.0.2", url.port)
    if socket.has_ipv6:
        assert _refuses(socket.AF_INET6, "::1", url.port)

    listeners = _tcp_listeners(url.port)
    if listeners is not None:  # Linux: the kernel's own list of listening sockets
        assert listeners == {"127.0.0.1"}


def _refuses(family: socket.AddressFamily, host: str, port: int) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect((host, port))
        except OSError as exc:
            return exc.errno in {errno.ECONNREFUSED, errno.EADDRNOTAVAIL, errno.ENETUNREACH}
        return False


def _tcp_listeners(port: int) -> set[str] | None:
    """Local addresses with a socket listening on `port`, from /proc/net/tcp{,6}; None if absent."""
    listen_state = "0A"
    found: set[str] = set()
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return None
    for table in tables:
        if not table.exists():
            continue
        for line in table.read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()
            address_hex, port_hex = fields[1].split(":")
            if fields[3] != listen_state or int(port_hex, 16) != port:
                continue
            # The address is printed as 32-bit words in host byte order.
            packed = b"".join(
                struct.pack("=I", int(address_hex[i : i + 8], 16))
                for i in range(0, len(address_hex), 8)
            )
            family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
            found.add(socket.inet_ntop(family, packed))
    return found


def test_server_stops_and_leaves_nothing_behind() -> None:
    reason = postgres_unavailable_reason()
    if reason is not None and not ci_requires_postgres():
        pytest.skip(reason)
    with postgres_server() as server:
        pid = server.pid()
        assert pid is not None
        assert process_alive(pid)
        assert server.base_dir.is_dir()
        socket_file = server.base_dir / f".s.PGSQL.{server.port}"
        assert socket_file.exists()  # the unix socket lives in the temporary directory
    assert not server.base_dir.exists()
    assert not process_alive(pid)
    assert _refuses(socket.AF_INET, "127.0.0.1", server.port)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("", False), ("false", False), ("0", False), ("true", True), ("1", True)],
)
def test_ci_requires_postgres(value: str | None, expected: bool) -> None:
    environ = {} if value is None else {"CI": value}
    assert ci_requires_postgres(environ) is expected
