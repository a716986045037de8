"""How fast the API serves pipelines, as ratios to a trivial FastAPI endpoint.

A SQLite store gets 10,000 pipelines (copies of the seed pipeline under other names, applied
like ``sluice apply`` does). The API then runs under uvicorn on 127.0.0.1 in a child process,
with one extra endpoint that returns a constant, and a single keep-alive httpx client sends
2,000 requests to each of: that trivial endpoint, ``GET /v1/pipelines/{id}`` (random ids) and
a 100-pipeline list page (random offsets). Reported: requests/s, p50 and p99 latency, and
throughput as a ratio to the trivial endpoint's. Then 100,000 more requests of every kind
(pipelines, pages, unknown ids, unknown keys) while the server's resident memory is sampled.
Then load: 64 concurrent clients for 15 s on the trivial endpoint, then for 60 s of mixed
``/v1`` requests (a pipeline, its status, its runs, a page, an unknown id), the memory sampled
every 6 s, after 120 s of the same load to warm up: under 64 clients the server's memory
grows at first (connections, its thread pool, caches; for up to 90 s in the runs measured) and
then holds.
Reported: requests/s, p50 and p99 latency, and the ratio to the trivial endpoint under the
same load.

Targets: a pipeline GET keeps ≥ 50 % of the trivial endpoint's throughput, and memory stays
flat: the last sample is within 5 % (or 4 MiB) of the one taken after the first 10,000
requests. Under load, the mixed requests keep ≥ 30 % of the trivial endpoint's throughput,
every answer is the one expected (no error), and memory stays flat the same way after the
warm-up. Exits 1 when a target is missed.

    .venv/bin/python benchmarks/bench_api.py
"""

from __future__ import annotations

import asyncio
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sluice.api import create_app
from sluice.api.limits import FailureLimit
from sluice.installation import INSTALLED
from sluice.manifests import read_manifests
from sluice.reconcile import apply, apply_set_of
from sluice.store import Store
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PIPELINES = 10_000
REQUESTS = 2_000
WARMUP = 200
TARGET_RATIO = 0.5
MEMORY_REQUESTS = 100_000
MEMORY_SAMPLES = 10
MEMORY_SLACK = 0.05
MEMORY_SLACK_BYTES = 4 * 2**20
KEY = "api_marketing_dashboard_change_me"
CLIENTS = 64
MIXED_SECONDS = 60.0
MIXED_WARMUP_SECONDS = 120.0
TRIVIAL_SECONDS = 15.0
MIXED_TARGET_RATIO = 0.3


def fill_store(url: str, folder: Path) -> list[int]:
    """Apply the examples' workspace and connection and PIPELINES copies of the seed."""
    seed = (EXAMPLES / "seed-pipeline.yaml").read_text()
    copies = [
        seed.replace("name: export-customers", f"name: export-customers-{n}", 1)
        for n in range(PIPELINES)
    ]
    (folder / "pipelines.yaml").write_text("\n---\n".join(copies))
    for name in ("workspace.yaml", "hubspot-connection.yaml"):
        (folder / name).write_text((EXAMPLES / name).read_text())
    store = Store(url)
    try:
        results = apply(store, read_manifests([folder]), INSTALLED, apply_set_of([folder]))
        assert not [r.error for r in results if r.error]
        return list(store.pipeline_ids().values())
    finally:
        store.close()


def serve(url: str, port: int) -> None:
    """The child process: the API plus the trivial endpoint, on 127.0.0.1:port."""
    # One address sends a new unknown key every fourth request of the memory phase: with no
    # window, the limit on unknown keys never starts (it would answer them 429), and the
    # refusals, 25,000, are not logged.
    app = create_app(Store(url), [], FailureLimit(seconds=0))
    logging.getLogger("sluice.api.limits").setLevel(logging.ERROR)

    @app.get("/trivial")
    async def trivial() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def wait_until_up(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the API did not start")


def measure(client: httpx.Client, path: Callable[[], str]) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 latency (ms) of REQUESTS sequential GETs."""
    headers = {"Authorization": f"Bearer {KEY}"}
    for _ in range(WARMUP):
        client.get(path(), headers=headers).raise_for_status()
    latencies = []
    started = time.perf_counter()
    for _ in range(REQUESTS):
        before = time.perf_counter()
        client.get(path(), headers=headers).raise_for_status()
        latencies.append(time.perf_counter() - before)
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return REQUESTS / elapsed, cuts[49] * 1000, cuts[98] * 1000


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc status")


def memory_samples(client: httpx.Client, pid: int, ids: list[int], rng: random.Random) -> list[int]:
    """The server's resident memory after each tenth of MEMORY_REQUESTS mixed requests."""
    valid = {"Authorization": f"Bearer {KEY}"}
    requests: list[Callable[[], tuple[str, dict[str, str], int]]] = [
        lambda: (f"/v1/pipelines/{rng.choice(ids)}", valid, 200),
        lambda: (f"/v1/pipelines?first={rng.randrange(len(ids))}&limit=10", valid, 200),
        lambda: (f"/v1/pipelines/{rng.randrange(1, 2**31)}", valid, 404),
        # Unknown keys, each new: the key lookup's memory must stay bounded.
        lambda: ("/v1/pipelines", {"Authorization": f"Bearer api_{rng.getrandbits(64)}"}, 401),
    ]
    samples = []
    for _ in range(MEMORY_SAMPLES):
        for _ in range(MEMORY_REQUESTS // MEMORY_SAMPLES):
            path, headers, status = rng.choice(requests)()
            answered = client.get(path, headers=headers).status_code
            if answered != status:
                raise RuntimeError(f"GET {path} answered {answered}, expected {status}")
        samples.append(resident_bytes(pid))
    return samples


@dataclass
class Load:
    """What CLIENTS concurrent clients got in a phase: answers by latency, and the unexpected."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    memory: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, cut: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[cut - 1] * 1000


Request = Callable[[], tuple[str, dict[str, str], int]]


def mixed_requests(ids: list[int], rng: random.Random) -> list[Request]:
    valid = {"Authorization": f"Bearer {KEY}"}
    return [
        lambda: (f"/v1/pipelines/{rng.choice(ids)}", valid, 200),
        lambda: (f"/v1/pipelines/{rng.choice(ids)}/status", valid, 200),
        lambda: (f"/v1/pipelines/{rng.choice(ids)}/runs", valid, 200),
        lambda: (f"/v1/pipelines?first={rng.randrange(len(ids))}&limit=10", valid, 200),
        lambda: (f"/v1/pipelines/{rng.randrange(1, 2**31)}", valid, 404),
    ]


async def under_load(port: int, pid: int, seconds: float, requests: list[Request]) -> Load:
    """CLIENTS clients, each sending one of ``requests`` after the other for ``seconds``, the
    server's resident memory sampled every tenth of the time."""
    load = Load(seconds)
    rng = random.Random(11)
    # aiohttp, not httpx: one process sends 7 to 9 times as many requests a second with it, which
    # measures the server rather than the client (httpx's pool held p99 near 2 s).
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=connector) as client:

        async def get(path: str, headers: dict[str, str]) -> int:
            async with client.get(path, headers=headers) as response:
                await response.read()
                return response.status

        # Every client's connection opened before the clock starts, as in a long-running load.
        await asyncio.gather(*(get("/healthz", {}) for _ in range(CLIENTS)))
        deadline = time.monotonic() + seconds

        async def one_client() -> None:
            while time.monotonic() < deadline:
                path, headers, status = rng.choice(requests)()
                before = time.perf_counter()
                answered = await get(path, headers)
                load.latencies.append(time.perf_counter() - before)
                if answered != status:
                    load.unexpected.append(f"GET {path} answered {answered}, not {status}")

        async def sample_memory() -> None:
            while time.monotonic() < deadline:
                await asyncio.sleep(seconds / 10)
                load.memory.append(resident_bytes(pid))

        await asyncio.gather(sample_memory(), *(one_client() for _ in range(CLIENTS)))
    return load


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
        return 0
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'store.db'}"
        started = time.perf_counter()
        ids = fill_store(url, Path(folder))
        print(f"applied {len(ids)} pipelines in {time.perf_counter() - started:.1f}s")
        port = free_port()
        server = subprocess.Popen([sys.executable, __file__, "--serve", url, str(port)])
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                wait_until_up(client)
                results = {
                    "trivial endpoint": measure(client, lambda: "/trivial"),
                    "GET /v1/pipelines/{id}": measure(
                        client, lambda: f"/v1/pipelines/{rng.choice(ids)}"
                    ),
                    "GET /v1/pipelines (100)": measure(
                        client, lambda: f"/v1/pipelines?first={rng.randrange(len(ids) - 100)}"
                    ),
                }
                started = time.perf_counter()
                samples = memory_samples(client, server.pid, ids, rng)
                memory_seconds = time.perf_counter() - started
            trivial_load = asyncio.run(
                under_load(port, server.pid, TRIVIAL_SECONDS, [lambda: ("/trivial", {}, 200)])
            )
            warmup_load = asyncio.run(
                under_load(port, server.pid, MIXED_WARMUP_SECONDS, mixed_requests(ids, rng))
            )
            mixed_load = asyncio.run(
                under_load(port, server.pid, MIXED_SECONDS, mixed_requests(ids, rng))
            )
        finally:
            server.terminate()
            server.wait(timeout=10)
    baseline = results["trivial endpoint"][0]
    print(f"{'':26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6}")
    for name, (rate, p50, p99) in results.items():
        print(f"{name:26} {rate:8.0f} {p50:8.2f} {p99:8.2f} {rate / baseline:6.2f}")
    ratio = results["GET /v1/pipelines/{id}"][0] / baseline
    print(f"target: pipeline GET ≥ {TARGET_RATIO:.0%} of the trivial endpoint: {ratio:.0%}")
    mebibytes = " ".join(f"{sample / 2**20:.1f}" for sample in samples)
    print(f"server memory (MiB) every {MEMORY_REQUESTS // MEMORY_SAMPLES:,} requests: {mebibytes}")
    growth = samples[-1] - samples[0]
    allowed = max(samples[0] * MEMORY_SLACK, MEMORY_SLACK_BYTES)
    print(
        f"target: memory flat over {MEMORY_REQUESTS:,} requests ({memory_seconds:.0f}s): "
        f"{growth / 2**20:+.1f} MiB after the first sample (allowed {allowed / 2**20:.1f})"
    )
    print(f"\n{CLIENTS} concurrent clients   {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6}")
    for name, load in (("trivial endpoint", trivial_load), ("mixed /v1 requests", mixed_load)):
        print(
            f"{name:26} {load.rate:8.0f} {load.percentile(50):8.2f} {load.percentile(99):8.2f} "
            f"{load.rate / trivial_load.rate:6.2f}"
        )
    mixed_ratio = mixed_load.rate / trivial_load.rate
    unexpected = trivial_load.unexpected + warmup_load.unexpected + mixed_load.unexpected
    print(
        f"target: {MIXED_SECONDS:.0f} s of mixed requests ≥ {MIXED_TARGET_RATIO:.0%} of the "
        f"trivial endpoint's throughput: {mixed_ratio:.0%}; unexpected answers: "
        f"{len(unexpected)}{' (' + unexpected[0] + ')' if unexpected else ''}"
    )
    for name, load in (("warm-up", warmup_load), ("measured", mixed_load)):
        every = load.seconds / 10
        shown = " ".join(f"{m / 2**20:.1f}" for m in load.memory)
        print(f"server memory (MiB) every {every:.0f} s, {name}: {shown}")
    under = mixed_load.memory
    load_growth = under[-1] - under[0]
    load_allowed = max(under[0] * MEMORY_SLACK, MEMORY_SLACK_BYTES)
    print(
        f"target: memory flat under load after {MIXED_WARMUP_SECONDS:.0f} s of warm-up: "
        f"{load_growth / 2**20:+.1f} MiB after the first sample (allowed "
        f"{load_allowed / 2**20:.1f})"
    )
    met = [
        ratio >= TARGET_RATIO,
        growth <= allowed,
        mixed_ratio >= MIXED_TARGET_RATIO,
        not unexpected,
        load_growth <= load_allowed,
    ]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
