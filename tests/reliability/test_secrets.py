"""No credential anywhere it should not be. Exports that succeed and exports that fail (a revoked
token, an unreachable warehouse) run in process with every logger at DEBUG and under
``sluice local``; then the API answers every endpoint with good and bad keys. The logs and
console output, the run summaries and error samples, every file local mode leaves (but the
credentials folders, which are the Secrets as a pod mounts them), the store and the warehouse's
Sluice tables are scanned for every secret the tests used: the application token, the
workspace's and an admin API key, the warehouse DSN's password. Zero hits.

The cluster side (ConfigMaps, resource status, Events, Job termination messages, the operator's
logs) is scanned the same way by tests/e2e/test_node.py."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sluice.api import create_app
from sluice.engine.export import run_export
from sluice.model.ids import workspace_id
from sluice.store import Store
from tests.integration.conftest import TOKEN, Target
from tests.integration.test_export import people
from tests.integration.test_export_faults import write_manifests
from tests.integration.test_local import API_KEY, NAMESPACE, PIPELINE, Local

PASSWORD = "pw-" + secrets.token_hex(12)
ADMIN_KEY = "api_admin_" + secrets.token_hex(12)
SECRETS = {"application token": TOKEN, "workspace API key": API_KEY, "admin API key": ADMIN_KEY,
           "warehouse password": PASSWORD}  # fmt: skip


@pytest.fixture
def guarded(target: Target) -> Iterator[Target]:
    """The PostgreSQL target, reached as a role with a password."""
    role = "sluice_scan_" + secrets.token_hex(4)
    target.sql(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    url = sa.make_url(target.location).set(username=role, password=PASSWORD)
    try:
        yield dataclasses.replace(target, location=url.render_as_string(hide_password=False))
    finally:
        target.sql(f"REASSIGN OWNED BY {role} TO CURRENT_USER")  # its tables go with the database
        target.sql(f"DROP ROLE {role}")


class Seen:
    """Everything a user or an operator of Sluice can read, by where it was read."""

    def __init__(self) -> None:
        self.places: dict[str, str] = {}

    def add(self, place: str, text: object) -> None:
        self.places[place] = self.places.get(place, "") + "\n" + str(text)

    def hits(self) -> list[str]:
        return [
            f"the {name} in {place}"
            for place, text in self.places.items()
            for name, secret in SECRETS.items()
            if secret in text
        ]


@pytest.mark.parametrize("target", ["PostgreSQL"], indirect=True)
def test_no_secret_is_logged_served_or_stored(
    guarded: Target, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Seen()
    guarded.load(people(40))
    caplog.set_level(logging.DEBUG)  # every logger, every level
    unreachable = sa.make_url(guarded.location).set(port=9, query={"connect_timeout": "2"})
    runs = {
        "a run that succeeds": (guarded, False),
        "a run with a revoked token": (guarded, True),
        "a run on an unreachable warehouse": (
            dataclasses.replace(guarded, location=unreachable.render_as_string(False)),
            False,
        ),
    }
    outcomes = []
    for label, (where, revoked) in runs.items():
        if revoked:
            guarded.twin.revoke_token()
        out, err = io.StringIO(), io.StringIO()
        try:
            summary = run_export(where.config(), out=out, err=err)
        finally:
            guarded.twin.restore_token()
        outcomes.append(summary.outcome)
        seen.add(f"the output of {label}", out.getvalue() + err.getvalue())
        seen.add(f"the summary of {label}", summary)
    assert outcomes == ["Succeeded", "Failed", "Failed"]
    seen.add("the logs", caplog.text)

    manifests, state = tmp_path / "manifests", tmp_path / "state"
    manifests.mkdir()
    write_manifests(guarded, manifests)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    arguments = [str(manifests), "--once", "--store", store_url, "--state", str(state)]
    guarded.load(people(60))
    for revoked in (False, True):
        if revoked:
            guarded.twin.revoke_token()
        try:
            local = Local(arguments)
            assert local.wait() == (1 if revoked else 0), local.output
        finally:
            guarded.twin.restore_token()
        seen.add("sluice local's output", local.output)
    for file in state.rglob("*"):
        if file.is_file() and "credentials" not in file.relative_to(state).parts:
            seen.add(f"local mode's {file.relative_to(state)}", file.read_text(errors="replace"))

    _read_the_api(store_url, seen)
    with sqlite3.connect(tmp_path / "store.db") as store:
        seen.add("the store", "\n".join(store.iterdump()))
    seen.add("the store's file", (tmp_path / "store.db").read_bytes().decode(errors="replace"))
    tables = guarded.sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "AND table_name <> 'profiles'"
    )
    assert tables, "the warehouse holds no Sluice table to scan"
    for (table,) in tables:
        seen.add(f"the warehouse table {table}", guarded.sql(f'SELECT * FROM "{table}"'))

    # The scan read what it claims to: the requests to the application, the runs' rows, and
    # the workspace key as the store keeps it, hashed.
    assert "HTTP Request: POST" in seen.places["the logs"]
    assert "export-customers" in seen.places["the store"]
    assert hashlib.sha256(API_KEY.encode()).hexdigest() in seen.places["the store"]
    assert seen.hits() == []


def _read_the_api(store_url: str, seen: Seen) -> None:
    """Every endpoint, with the workspace key, the admin key, a wrong key and none."""
    store = Store(store_url)
    try:
        pipeline = store.pipeline_ids()[NAMESPACE, PIPELINE]
        client = TestClient(create_app(store, [ADMIN_KEY]))
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        credentials = [
            {"Authorization": f"Bearer {API_KEY}"},
            admin | {"Sluice-Workspace": str(workspace_id(NAMESPACE))},
            admin,
            {"Authorization": f"Bearer {API_KEY}x"},
            {"Authorization": API_KEY},
            {},
        ]
        paths = ["/v1/pipelines", f"/v1/pipelines/{pipeline}", f"/v1/pipelines/{pipeline}/status",
                 f"/v1/pipelines/{pipeline}/runs", "/healthz", "/readyz", "/metrics"]  # fmt: skip
        for headers in credentials:
            for path in paths:
                response = client.get(path, headers=headers)
                seen.add(f"the API's answer to {path}", f"{response.headers}\n{response.text}")
    finally:
        store.close()
