"""`sluice api` serves the store over HTTP on loopback, with the keys it is given."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sluice.cli import main
from sluice.model.ids import pipeline_id, workspace_id
from tests.support import EXAMPLES, example_names

WORKSPACE_KEY = "api_marketing_dashboard_change_me"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_api(store: str, base: str) -> subprocess.Popen[bytes]:
    """`sluice api` on the store, serving at `base` once this returns."""
    sluice = Path(sys.executable).parent / "sluice"
    # Ctrl-C reaches it as in a terminal, even when the tests run with SIGINT ignored (in a
    # background job): an ignored signal stays ignored in the programs a process starts.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server = subprocess.Popen(
            [str(sluice), "api", "--store", store, "--listen", base.removeprefix("http://")],
            env={**os.environ, "SLUICE_ADMIN_API_KEYS": "api_admin_one, api_admin_two,"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            raise AssertionError(f"sluice api did not start: {server.communicate()[0]!r}")
        time.sleep(0.1)


def test_sluice_api_serves_applied_pipelines(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["apply", "-f", str(EXAMPLES), "--store", store]) == 0
    base = f"http://127.0.0.1:{free_port()}"
    server = start_api(store, base)
    try:
        seed = pipeline_id("marketing", "export-customers")
        as_workspace = httpx.get(
            f"{base}/v1/pipelines/{seed}",
            headers={"Authorization": f"Bearer {WORKSPACE_KEY}"},
            timeout=5,
        )
        assert as_workspace.status_code == 200
        assert as_workspace.json()["name"] == "Export customers"
        as_admin = httpx.get(
            f"{base}/v1/pipelines",
            headers={
                "Authorization": "Bearer api_admin_two",
                "Sluice-Workspace": str(workspace_id("marketing")),
            },
            timeout=5,
        )
        pipelines = example_names("marketing", "ExportPipeline")
        assert as_admin.status_code == 200 and as_admin.json()["total"] == len(pipelines)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    assert server.returncode is not None
    # Keys never reach the log.
    assert b"api_admin" not in output and WORKSPACE_KEY.encode() not in output


def test_ctrl_c_stops_sluice_api_quietly(tmp_path: Path) -> None:
    server = start_api(f"sqlite:///{tmp_path / 'store.db'}", f"http://127.0.0.1:{free_port()}")
    server.send_signal(signal.SIGINT)
    output, _ = server.communicate(timeout=20)
    assert server.returncode == 0
    assert b"Traceback" not in output
