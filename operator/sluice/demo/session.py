"""``make demo`` and ``make serve``: Sluice's whole job on one machine, nothing to install.

The demo warehouse is a DuckDB file of seeded demo profiles (:mod:`sluice.demo.profiles`),
created once; the demo application is the HubSpot twin in a child process, keeping its contacts
in a state file between demos; ``examples/demo/`` declares the seed pipeline against both.
``make demo`` then runs ``sluice local examples/demo --once`` (one export, as a CronJob would run
it) and shows what the application holds and what the read-only API answers. Run again, it
shows the incremental behaviour: nothing changed, nothing sent. ``make serve`` leaves
``sluice local`` running with the API up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from sluice.demo.profiles import DEFAULT_COUNT, create_demo_warehouse

MANIFESTS = "examples/demo"
STATE = Path(".demo")
WAREHOUSE = STATE / "warehouse.duckdb"
STORE = f"sqlite:///{STATE / 'store.db'}"
APP_LISTEN = "127.0.0.1:47080"
APP_URL = f"http://{APP_LISTEN}"
#: The demo Secrets' values (examples/demo/): the twin's token and the Workspace's API key.
APP_TOKEN = "pat-demo-local-twin"
API_KEY = "api_demo_dashboard_key"
API_LISTEN = "127.0.0.1:8080"
NAMESPACE, PIPELINE = "demo", "export-customers"
_START_SECONDS = 30.0
_SAMPLE_CONTACTS = 3
#: ``sluice local --once``'s exit code when the worst run partially failed.
PARTIALLY_FAILED = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sluice.demo.session", description=__doc__)
    parser.add_argument("--serve", action="store_true", help="keep sluice local running")
    parser.add_argument("--profiles", type=int, default=DEFAULT_COUNT, metavar="N")
    args = parser.parse_args(argv)
    STATE.mkdir(exist_ok=True)
    if not WAREHOUSE.exists():
        _step(f"python -m sluice.demo.profiles --duckdb {WAREHOUSE} --count {args.profiles}")
        print(create_demo_warehouse(str(WAREHOUSE), args.profiles))
    with _demo_application():
        command = [sys.executable, "-m", "sluice", "local", MANIFESTS, "--store", STORE]
        command += ["--state", str(STATE)]
        _step(f"sluice local {MANIFESTS} --once")
        code = _foreground([*command, "--once"])
        if code == PARTIALLY_FAILED:
            print("(partially failed on purpose: some demo profiles share an email)")
            code = 0
        _print_application()
        _print_pipeline()
        if args.serve:
            _step(f"sluice local {MANIFESTS} --listen {API_LISTEN}   (Ctrl-C stops)")
            _print_curl_examples()
            code = _foreground([*command, "--listen", API_LISTEN])
    return code


def _step(text: str) -> None:
    print(f"\n$ {text}", flush=True)


def _foreground(command: list[str]) -> int:
    child = subprocess.Popen(command)
    try:
        return child.wait()
    except KeyboardInterrupt:  # the terminal's Ctrl-C reached the child too: it stops cleanly
        return child.wait()


@contextlib.contextmanager
def _demo_application() -> Iterator[None]:
    """The HubSpot twin on :data:`APP_LISTEN`, its contacts kept in ``.demo/app-state.json``."""
    _step(f"starting the demo application (the HubSpot twin) on {APP_URL}")
    twin = subprocess.Popen(
        [
            *(sys.executable, "-m", "sluice.twins.hubspot", "--listen", APP_LISTEN),
            *("--token", APP_TOKEN, "--state", str(STATE / "app-state.json")),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert twin.stdout is not None
        line = twin.stdout.readline()
        if not re.match(r"listening on ", line):
            raise SystemExit(
                f"the demo application did not start (see above; {APP_LISTEN} in use?)"
            )
        print(line.strip())
        yield
    finally:
        twin.terminate()  # it saves its contacts as it stops
        try:
            twin.wait(timeout=_START_SECONDS)
        except subprocess.TimeoutExpired:
            twin.kill()


def _print_application() -> None:
    _step(f"curl {APP_URL}/crm/v3/objects/contacts?limit={_SAMPLE_CONTACTS}   (the demo app)")
    headers = {"Authorization": f"Bearer {APP_TOKEN}"}
    with httpx.Client(base_url=APP_URL, headers=headers, timeout=_START_SECONDS) as client:
        page = client.get(
            "/crm/v3/objects/contacts",
            params={"limit": _SAMPLE_CONTACTS, "properties": "email,firstname,lastname"},
        ).json()
        total = client.get("/_twin/contacts", params={"count": 1}).json()["count"]
    for contact in page.get("results", []):
        properties = contact["properties"]
        print(
            f"  contact {contact['id']}: {properties.get('firstname')} "
            f"{properties.get('lastname')} <{properties.get('email')}>"
        )
    print(f"  … {total:,} contacts in all")


def _print_pipeline() -> None:
    """What ``GET /v1/pipelines/{id}`` answers, from the API itself (in process, no socket)."""
    from sluice.api import create_app  # noqa: PLC0415 - FastAPI only for this step
    from sluice.store import Store  # noqa: PLC0415

    store = Store(STORE)
    try:
        pipeline_id = store.pipeline_ids()[NAMESPACE, PIPELINE]
        path = f"/v1/pipelines/{pipeline_id}"
        _step(f'curl -H "Authorization: Bearer {API_KEY}" http://{API_LISTEN}{path}')

        async def get() -> httpx.Response:
            transport = httpx.ASGITransport(app=create_app(store, []))
            async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
                return await client.get(path, headers={"Authorization": f"Bearer {API_KEY}"})

        response = asyncio.run(get())
        print(json.dumps(response.json(), indent=2))
    finally:
        store.close()


def _print_curl_examples() -> None:
    api = f"http://{API_LISTEN}"
    auth = f'-H "Authorization: Bearer {API_KEY}"'
    print("the read-only API, once it is up:")
    print(f"  curl {auth} {api}/v1/pipelines")
    print(f"  curl {auth} {api}/v1/pipelines/<id>        (the id is in the list)")
    print(f"  curl {auth} {api}/v1/pipelines/<id>/runs")
    print(f"the demo application: curl -H 'Authorization: Bearer {APP_TOKEN}' \\")
    print(f"  '{APP_URL}/crm/v3/objects/contacts?limit=5&properties=email,firstname'")


if __name__ == "__main__":
    sys.exit(main())
