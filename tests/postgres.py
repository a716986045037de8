"""Throw-away PostgreSQL servers for tests: real servers, started and removed by the harness.

`postgres_server()` runs `initdb` into a fresh temporary directory and starts `postgres` through
`pg_ctl`, listening on a free TCP port of 127.0.0.1 only (its unix socket stays inside that
directory), tuned for speed rather than durability; on exit it stops the server
(`pg_ctl stop -m fast`) and removes the directory. PostgreSQL refuses to run as root, so a root
process runs `initdb` and `pg_ctl` as the `postgres` system user that Debian's package creates.

The binaries are found in Debian's `/usr/lib/postgresql/<version>/bin` (newest version first),
else on PATH. `scripts/ensure-packages.sh` installs them where it can.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa

from tests.support import free_port

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
DEBIAN_LIBDIR = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
INSTALL_HINT = (
    "install it with 'sudo apt-get install postgresql' (or run scripts/ensure-packages.sh)"
)

#: Bounds, in seconds, on every wait for a command or the server.
INITDB_TIMEOUT = 120.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
START_ATTEMPTS = 3
LOG_TAIL_LINES = 40


class PostgresError(RuntimeError):
    """A throw-away server could not be set up, started or stopped."""


@dataclass(frozen=True)
class PostgresServer:
    """A running throw-away server."""

    url: str
    """SQLAlchemy URL of its `postgres` database, as its superuser, over TCP."""
    host: str
    port: int
    base_dir: Path
    """Temporary directory holding the data directory, the unix socket and the log."""
    data_dir: Path
    log_file: Path

    def pid(self) -> int | None:
        """The postmaster's process id, while its pid file exists."""
        return _postmaster_pid(self.data_dir)

    def restart(self) -> None:
        """Stop the server as an administrator would (``pg_ctl stop -m fast``: every client's
        connection is cut), then start it again on the same port and data."""
        self.stop()
        self.start()

    def stop(self) -> None:
        """Stop the server as an administrator would: every client's connection is cut."""
        bindir, owner = _server_binaries()
        _pg_ctl_stop(owner, bindir, self.data_dir)

    def start(self) -> None:
        """Start the stopped server again on the same port and data; return once it accepts
        connections."""
        bindir, owner = _server_binaries()
        _pg_ctl_start(owner, bindir, self.data_dir, self.log_file)
        _wait_until_accepting(self)


def _server_binaries() -> tuple[Path, pwd.struct_passwd | None]:
    """Where the server's binaries are, and the user they run as (None: this process's)."""
    bindir = find_bindir()
    assert bindir is not None
    return bindir, pwd.getpwnam(SYSTEM_USER) if _is_root() else None


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None when they are not installed."""
    candidates = sorted(
        DEBIAN_LIBDIR.glob("*/bin"),
        key=lambda path: _version_key(path.parent.name),
        reverse=True,
    )
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in SERVER_BINARIES):
            return bindir
    return None


def postgres_unavailable_reason() -> str | None:
    """Why no throw-away server can be started here, or None when one can."""
    if find_bindir() is None:
        return f"PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; {INSTALL_HINT}"
    if _is_root():
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return (
                f"running as root, but there is no '{SYSTEM_USER}' system user to run "
                f"PostgreSQL as (PostgreSQL refuses to run as root); {INSTALL_HINT}"
            )
        if shutil.which("runuser") is None:
            return "running as root, but 'runuser' (util-linux) is missing to drop privileges"
    return None


def ci_requires_postgres(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment says this is CI, where PostgreSQL must be available."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() not in {"", "0", "false", "no", "off"}


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Run a throw-away server; yield its SQLAlchemy URL."""
    with postgres_server() as server:
        yield server.url


@contextlib.contextmanager
def postgres_server(
    also_listen: str | None = None, also_trust: str | None = None
) -> Iterator[PostgresServer]:
    """Run a throw-away server; yield it, then stop it and remove its directory.

    `also_listen` adds an address to 127.0.0.1 (a test node's gateway, where pods reach it),
    and `also_trust` a network whose clients it trusts (the pods' subnet)."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        raise PostgresError(reason)
    bindir = find_bindir()
    assert bindir is not None
    owner = pwd.getpwnam(SYSTEM_USER) if _is_root() else None

    base_dir = Path(tempfile.mkdtemp(prefix="sluice-pg-", dir=_temp_root(owner)))
    data_dir = base_dir / "data"
    log_file = base_dir / "server.log"
    started = False
    try:
        if owner is not None:
            os.chown(base_dir, owner.pw_uid, owner.pw_gid)
        _run(
            owner,
            [
                str(bindir / "initdb"),
                f"--pgdata={data_dir}",
                f"--username={SUPERUSER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=base_dir,
            timeout=INITDB_TIMEOUT,
            what="initdb",
        )
        original_conf = (data_dir / "postgresql.conf").read_text(encoding="utf-8")
        if also_trust is not None:
            with (data_dir / "pg_hba.conf").open("a", encoding="utf-8") as hba:
                hba.write(f"host all all {also_trust} trust\n")
        server: PostgresServer | None = None
        for attempt in range(1, START_ATTEMPTS + 1):
            port = free_port()
            _write_conf(data_dir, original_conf, port, base_dir, also_listen)
            started = True  # from here on, stop whatever may have started
            try:
                _pg_ctl_start(owner, bindir, data_dir, log_file)
            except PostgresError:
                # Another process can take the free port before the server binds it: retry.
                if attempt < START_ATTEMPTS and "could not bind" in _tail(log_file):
                    _pg_ctl_stop(owner, bindir, data_dir)
                    started = False
                    continue
                raise
            url = f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/postgres"
            server = PostgresServer(url, "127.0.0.1", port, base_dir, data_dir, log_file)
            break
        assert server is not None
        _wait_until_accepting(server)
        yield server
    finally:
        try:
            if started:
                _pg_ctl_stop(owner, bindir, data_dir)
        finally:
            shutil.rmtree(base_dir, ignore_errors=True)


@contextlib.contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """Create a fresh database `test_<random>` on the server; yield its URL, then drop it."""
    name = f"test_{secrets.token_hex(6)}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            url = sa.make_url(server_url).set(database=name)
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                # FORCE: connections a test left open must not keep the database alive.
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


# -- helpers -------------------------------------------------------------------------------------


def _is_root() -> bool:
    return os.geteuid() == 0


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


def _temp_root(owner: pwd.struct_passwd | None) -> str:
    """Where to make the temporary directory: one the `postgres` user can reach, as root."""
    root = tempfile.gettempdir()
    if owner is None:
        return root
    # Every ancestor must be searchable by others (TMPDIR may point into root's own home).
    path = Path(root).resolve()
    for directory in (path, *path.parents):
        if not directory.stat().st_mode & 0o001:
            return "/tmp"
    return root


def _run(
    owner: pwd.struct_passwd | None,
    argv: list[str],
    *,
    cwd: Path,
    timeout: float,
    what: str,
    log_file: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    if owner is not None:
        argv = ["runuser", "-u", owner.pw_name, "--", *argv]
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
    for name in ("PGHOST", "PGPORT", "PGDATA", "PGUSER", "PGDATABASE", "PGOPTIONS"):
        env.pop(name, None)
    try:
        result = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PostgresError(
            f"{what} did not finish within {timeout:.0f} s{_log_excerpt(log_file)}"
        ) from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise PostgresError(
            f"{what} failed with exit code {result.returncode}: {output}{_log_excerpt(log_file)}"
        )
    return result


def _write_conf(
    data_dir: Path, original: str, port: int, socket_dir: Path, also_listen: str | None
) -> None:
    quoted_socket_dir = str(socket_dir).replace("'", "''")
    addresses = ",".join(["127.0.0.1", *([also_listen] if also_listen else [])])
    settings = f"""
# -- throw-away test server (tests/postgres.py) --
listen_addresses = '{addresses}'
port = {port}
unix_socket_directories = '{quoted_socket_dir}'
fsync = off
full_page_writes = off
synchronous_commit = off
logging_collector = off
"""
    # Written by this (maybe root) process into the file initdb made: its owner stays the same.
    (data_dir / "postgresql.conf").write_text(original + settings, encoding="utf-8")


def _pg_ctl_start(
    owner: pwd.struct_passwd | None, bindir: Path, data_dir: Path, log_file: Path
) -> None:
    _run(
        owner,
        [
            str(bindir / "pg_ctl"),
            "start",
            f"--pgdata={data_dir}",
            f"--log={log_file}",
            "--wait",
            f"--timeout={int(START_TIMEOUT)}",
        ],
        cwd=data_dir.parent,
        timeout=START_TIMEOUT + 10,
        what="pg_ctl start",
        log_file=log_file,
    )


def _pg_ctl_stop(owner: pwd.struct_passwd | None, bindir: Path, data_dir: Path) -> None:
    """Stop the server, fast; kill it if that fails. Does nothing if none is running."""
    pid = _postmaster_pid(data_dir)
    if pid is None:
        return
    try:
        _run(
            owner,
            [
                str(bindir / "pg_ctl"),
                "stop",
                f"--pgdata={data_dir}",
                "--mode=fast",
                "--wait",
                f"--timeout={int(STOP_TIMEOUT)}",
            ],
            cwd=data_dir.parent,
            timeout=STOP_TIMEOUT + 10,
            what="pg_ctl stop",
        )
    except PostgresError:
        # Last resort: SIGQUIT asks the postmaster to take its children down at once.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        if not _wait_until_gone(pid, 10):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise
    # pg_ctl returns once the pid file is gone, a moment before the process itself.
    _wait_until_gone(pid, 5)


def _wait_until_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        first_line = (data_dir / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0]
        return int(first_line)
    except (OSError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie awaiting its reaper has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # no /proc here (or it just went): trust kill(0)
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in {"Z", "X"}


def _wait_until_accepting(server: PostgresServer) -> None:
    """Wait, bounded, until a client can log in and run a query over TCP."""
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        try:
            with psycopg.connect(
                host=server.host,
                port=server.port,
                user=SUPERUSER,
                dbname="postgres",
                connect_timeout=2,
            ) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() >= deadline:
                raise PostgresError(
                    f"PostgreSQL on {server.host}:{server.port} did not accept connections "
                    f"within {CONNECT_TIMEOUT:.0f} s: {exc}{_log_excerpt(server.log_file)}"
                ) from exc
            time.sleep(0.05)


def _tail(log_file: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if log_file is None:
        return ""
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _log_excerpt(log_file: Path | None) -> str:
    tail = _tail(log_file)
    if not tail:
        return ""
    return f"\n--- last lines of the server log {log_file} ---\n{tail}"
