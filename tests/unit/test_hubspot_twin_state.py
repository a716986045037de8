"""The twin's ``--state``: contacts kept across restarts, as ``make demo`` relies on."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.twins.hubspot import HubSpotTwin, TwinStateError, serve
from tests.unit.test_hubspot_twin import CREATE, TOKEN, create, people

START_SECONDS = 30


def contacts(base_url: str) -> list[dict[str, Any]]:
    body: dict[str, Any] = httpx.get(f"{base_url}/_twin/contacts", timeout=10).json()
    return sorted(body["results"], key=lambda contact: int(contact["id"]))


def client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)


def test_contacts_survive_a_restart_with_their_ids_and_unique_emails(tmp_path: Path) -> None:
    state = tmp_path / "app-state.json"
    first = HubSpotTwin(TOKEN, rate_limit=False, state_path=state)
    with serve(first) as base_url, client(base_url) as http:
        assert create(http, *people(3)).status_code == 201
        before = contacts(base_url)
    first.save_state()

    second = HubSpotTwin(TOKEN, rate_limit=False, state_path=state)
    with serve(second) as base_url, client(base_url) as http:
        assert contacts(base_url) == before
        # The unique index came back: a second contact with a saved email is refused...
        again = create(http, {"email": "P1@example.com"})
        assert again.status_code == 409
        # ...and new ids follow the saved ones.
        added = create(http, {"email": "new@example.com"}).json()["results"][0]["id"]
        assert int(added) > max(int(c["id"]) for c in before)


def test_reset_empties_the_saved_state(tmp_path: Path) -> None:
    state = tmp_path / "app-state.json"
    twin = HubSpotTwin(TOKEN, rate_limit=False, state_path=state)
    with serve(twin) as base_url, client(base_url) as http:
        create(http, *people(2))
    twin.save_state()
    twin.reset()
    twin.save_state()
    assert HubSpotTwin(TOKEN, state_path=state).contact_count() == 0


@pytest.mark.parametrize("text", ["", "{not json", '{"contacts": 3}', "[]"])
def test_an_unreadable_state_is_refused_not_started_empty(tmp_path: Path, text: str) -> None:
    state = tmp_path / "app-state.json"
    state.write_text(text)
    with pytest.raises(TwinStateError, match=r"app-state\.json cannot be read"):
        HubSpotTwin(TOKEN, state_path=state)


@pytest.fixture
def twin_process(tmp_path: Path) -> Iterator[tuple[list[str], Path]]:
    state = tmp_path / "app-state.json"
    command = [sys.executable, "-m", "sluice.twins.hubspot", "--listen", "127.0.0.1:0"]
    yield [*command, "--token", TOKEN, "--state", str(state)], state


def start(command: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    match = re.fullmatch(r"listening on (\S+)\n", process.stdout.readline())
    assert match is not None, "the twin did not start"
    return process, match.group(1)


def test_the_command_saves_on_sigterm_and_loads_on_start(
    twin_process: tuple[list[str], Path],
) -> None:
    command, state = twin_process
    process, base_url = start(command)
    try:
        with client(base_url) as http:
            assert http.post(CREATE, json={"inputs": [{"properties": p} for p in people(5)]})
        before = contacts(base_url)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=START_SECONDS) == 0
    assert state.exists()

    process, base_url = start(command)
    try:
        assert contacts(base_url) == before
    finally:
        process.terminate()
        process.wait(timeout=START_SECONDS)


def test_the_command_exits_2_on_a_corrupt_state(twin_process: tuple[list[str], Path]) -> None:
    command, state = twin_process
    state.write_text("{corrupt")
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=START_SECONDS
    )
    assert done.returncode == 2
    assert f"the twin's state file {state} cannot be read" in done.stderr
