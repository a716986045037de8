"""The twin's ``--state``: contacts kept across restarts, as ``make demo`` relies on."""

from __future__ import annotations

import contextlib
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.twins.hubspot import SAVE_SECONDS, HubSpotTwin, TwinStateError, serve
from tests.unit.test_hubspot_twin import CREATE, CUSTOM, TOKEN, UPDATE, create, people

#: Bound on every wait for a twin process: its start, its stop, a periodic save.
WAIT_SECONDS = 30


def contacts(base_url: str) -> list[dict[str, Any]]:
    body: dict[str, Any] = httpx.get(f"{base_url}/_twin/contacts", timeout=10).json()
    return sorted(body["results"], key=lambda contact: int(contact["id"]))


def client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)


def test_served_contacts_survive_a_restart_with_their_ids_times_and_properties(
    tmp_path: Path,
) -> None:
    state = tmp_path / "app-state.json"
    first = HubSpotTwin(TOKEN, custom_properties=CUSTOM, rate_limit=False, state_path=state)
    with serve(first) as base_url, client(base_url) as http:
        rows = [{**row, "customer_id": f"c{i}", "plan": "pro"} for i, row in enumerate(people(3))]
        assert create(http, *rows).status_code == 201
        time.sleep(0.002)  # a later lastmodifieddate than createdate
        renamed = {"inputs": [{"id": "1002", "properties": {"lastname": "Renamed"}}]}
        assert http.post(UPDATE, json=renamed).status_code == 200
        before = contacts(base_url)
    # serve() saved as it stopped, through a file renamed into place: nothing else is left.
    assert [p.name for p in tmp_path.iterdir()] == [state.name]

    # The custom properties come back from the file: none are given this time.
    second = HubSpotTwin(TOKEN, rate_limit=False, state_path=state)
    with serve(second) as base_url:
        assert contacts(base_url) == before
    assert before[1]["updatedAt"] != before[1]["createdAt"]
    assert before[1]["properties"]["lastname"] == "Renamed"


def test_after_a_restart_ids_follow_the_saved_ones_and_unique_values_still_conflict(
    tmp_path: Path,
) -> None:
    state = tmp_path / "app-state.json"
    first = HubSpotTwin(TOKEN, custom_properties=CUSTOM, rate_limit=False, state_path=state)
    with serve(first) as base_url, client(base_url) as http:
        rows = [{**row, "customer_id": f"c{i}"} for i, row in enumerate(people(3))]
        saved_ids = [int(c["id"]) for c in create(http, *rows).json()["results"]]

    second = HubSpotTwin(TOKEN, rate_limit=False, state_path=state)
    with serve(second) as base_url, client(base_url) as http:
        email = create(http, {"email": "P1@example.com"})
        assert email.status_code == 409
        assert email.json()["message"] == f"Contact already exists. Existing ID: {saved_ids[1]}"
        assert create(http, {"email": "x@example.com", "customer_id": "c2"}).status_code == 409
        added = create(http, *people(2, prefix="new")).json()["results"]
        assert min(int(c["id"]) for c in added) > max(saved_ids)
        by_customer = {"idProperty": "customer_id", "inputs": [{"id": "c0"}]}
        read = http.post("/crm/v3/objects/contacts/batch/read", json=by_customer).json()
        assert [c["id"] for c in read["results"]] == [str(saved_ids[0])]


def test_a_save_is_due_only_when_the_contacts_changed(tmp_path: Path) -> None:
    state = tmp_path / "app-state.json"
    twin = HubSpotTwin(TOKEN, rate_limit=False, state_path=state)
    assert not twin.save_state_if_changed()
    assert not state.exists()
    twin.add_contacts(people(2))
    assert twin.save_state_if_changed()
    assert not twin.save_state_if_changed()
    assert not HubSpotTwin(TOKEN, state_path=state).save_state_if_changed()


def test_twin_reset_empties_the_saved_state(tmp_path: Path) -> None:
    state = tmp_path / "app-state.json"
    twin = HubSpotTwin(TOKEN, rate_limit=False, state_path=state)
    with serve(twin) as base_url, client(base_url) as http:
        create(http, *people(2))
        twin.save_state()
        assert httpx.post(f"{base_url}/_twin/reset", timeout=10).status_code == 200
    assert HubSpotTwin(TOKEN, state_path=state).contact_count() == 0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{not json",
        "[]",
        '{"contacts": 3}',
        '{"format": 99, "nextId": 1001, "properties": [], "contacts": []}',
        '{"format": 1, "nextId": 1001, "properties": [], "contacts": [[1001, "x"]]}',
        '{"format": 1, "nextId": 1001, "properties": [{}], "contacts": []}',
    ],
)
def test_an_unreadable_state_is_refused_not_started_empty(tmp_path: Path, text: str) -> None:
    state = tmp_path / "app-state.json"
    state.write_text(text)
    with pytest.raises(TwinStateError, match=r"app-state\.json cannot be read: \S") as refused:
        HubSpotTwin(TOKEN, state_path=state)
    assert "\n" not in str(refused.value)


def test_a_truncated_state_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "app-state.json"
    twin = HubSpotTwin(TOKEN, state_path=state)
    twin.add_contacts(people(20))
    twin.save_state()
    state.write_bytes(state.read_bytes()[:-40])
    with pytest.raises(TwinStateError):
        HubSpotTwin(TOKEN, state_path=state)


# -- the command ------------------------------------------------------------------------------


@pytest.fixture
def twin_command(tmp_path: Path) -> tuple[list[str], Path]:
    state = tmp_path / "app-state.json"
    command = [sys.executable, "-m", "sluice.twins.hubspot", "--listen", "127.0.0.1:0"]
    return [*command, "--token", TOKEN, "--state", str(state)], state


@contextlib.contextmanager
def running(command: list[str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The twin's process and its base URL, read from its ``listening on`` line; stopped (and
    killed when it does not stop) on exit unless the body already ended it."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        try:
            line = lines.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            line = ""
        match = re.fullmatch(r"listening on (\S+)\n", line)
        assert match is not None, f"the twin did not start: {line!r}"
        yield process, match.group(1)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=WAIT_SECONDS)
        stdout.close()


def create_five(base_url: str) -> list[dict[str, Any]]:
    with client(base_url) as http:
        inputs = [{"properties": p} for p in people(5)]
        assert http.post(CREATE, json={"inputs": inputs}).status_code == 201
    return contacts(base_url)


def test_the_command_saves_on_sigterm_and_loads_on_start(
    twin_command: tuple[list[str], Path],
) -> None:
    command, state = twin_command
    with running(command) as (process, base_url):
        before = create_five(base_url)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT_SECONDS) == 0
    assert len(json.loads(state.read_text())["contacts"]) == 5

    with running(command) as (_, base_url):
        assert contacts(base_url) == before


def test_a_killed_command_keeps_what_it_saved_periodically(
    twin_command: tuple[list[str], Path],
) -> None:
    command, state = twin_command
    with running(command) as (process, base_url):
        before = create_five(base_url)
        deadline = time.monotonic() + WAIT_SECONDS
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(SAVE_SECONDS / 10)
        process.kill()  # no chance to save on its way out
        process.wait(timeout=WAIT_SECONDS)

    with running(command) as (_, base_url):
        assert contacts(base_url) == before


def test_the_command_exits_2_on_a_corrupt_state(twin_command: tuple[list[str], Path]) -> None:
    command, state = twin_command
    state.write_text("{corrupt")
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=WAIT_SECONDS
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert re.fullmatch(
        f"error: the twin's state file {re.escape(str(state))} cannot be read: .+\n", done.stderr
    )
