"""Mailchimp's two ways of writing many members, measured against its twin: batch subscribe
(``POST /3.0/lists/{id}``, 500 members a request, answered at once: what the connector uses)
and batch operations (``POST /3.0/batches`` of ``PUT …/members/{hash}`` operations, run later
on Mailchimp's side, results in a gzipped tar to download).

For N profiles (default 100,000, ``--profiles N``) into an empty audience, each way:

- the time until every record's outcome is known, profiles/s, and requests per 1,000 profiles;
- how many records got an outcome, and whether it says *created* or *updated*;
- how many results the first file of the archive holds (a client reading only that file, as the
  reference did, misses the rest);
- with the answer to the first write request lost (the request carried out, its answer
  replaced by a 503): members in the audience afterwards, and operations Mailchimp ran.

Batch operations are submitted ``--operations-per-batch`` at a time (default 5,000, what the
reference sent) and polled once a second, each batch until it finishes; the twin runs them as
fast as it can, one at a time as Mailchimp does (Mailchimp documents no pace), so their times are
a lower bound. Both ways go through the connector's HTTP client: its pacing (50 requests/s, 8 in
flight, under Mailchimp's 10 connections) and its retries.

Targets: each way leaves exactly N members, with and without the lost answer. Exits 1 otherwise.

    .venv/bin/python benchmarks/bench_mailchimp_writes.py [--profiles 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tarfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))

from sluice.apps.connector import WriteRecord
from sluice.apps.mailchimp import EMAIL, MailchimpConnector, subscriber_hash
from sluice.twins.mailchimp import DEFAULT_LIST_ID, MailchimpTwin
from sluice.twins.serving import serve
from targets import verdict

API_KEY = "0123456789abcdef0123456789abcdef-us21"
POLL_SECONDS = 1.0


@dataclass
class Written:
    """What a way of writing knows when it returns."""

    seconds: float
    answered: int
    created_known: bool
    first_file: int | None = None


@dataclass
class Measured:
    """A way of writing on a fresh twin: what it knew, what it cost, what it left."""

    written: Written
    requests: int
    members: int
    operations_run: int


def records(count: int) -> list[WriteRecord]:
    return [
        WriteRecord(
            key,
            None,
            {
                EMAIL: f"member{key}@example.com",
                "status": "subscribed",
                "merge_fields": {"FNAME": f"First{key}", "LNAME": f"Last{key}"},
            },
        )
        for key in range(count)
    ]


def connector(twin: MailchimpTwin, url: str) -> MailchimpConnector:
    return MailchimpConnector(
        {"audienceId": twin.list_id, "baseUrl": f"{url}/3.0"}, {"apiKey": API_KEY}
    )


async def batch_subscribe(app: MailchimpConnector, batch: list[WriteRecord]) -> Written:
    started = time.perf_counter()
    results = await app.upsert(EMAIL, batch)
    answered = sum(r.external_id is not None for r in results)
    return Written(time.perf_counter() - started, answered, created_known=True)


async def batch_operations(
    app: MailchimpConnector, batch: list[WriteRecord], per_batch: int
) -> Written:
    """Submit every batch, then poll each until it finishes and read its whole archive."""
    started = time.perf_counter()
    submitted: list[str] = []
    for start in range(0, len(batch), per_batch):
        operations = [
            {
                "method": "PUT",
                "path": f"/lists/{app.audience_id}/members/{subscriber_hash(r.properties[EMAIL])}",
                "body": json.dumps(
                    {
                        EMAIL: r.properties[EMAIL],
                        "status_if_new": r.properties["status"],
                        "merge_fields": r.properties["merge_fields"],
                    }
                ),
                "operation_id": str(r.key),
            }
            for r in batch[start : start + per_batch]
        ]
        # PUT operations are an upsert each: a batch whose answer was lost may be sent again.
        response = await app.http.request(
            "POST", "/batches", json_body={"operations": operations}, idempotent=True
        )
        if response.status_code != 200:
            raise SystemExit(f"POST /batches answered {response.status_code}: {response.text}")
        submitted.append(response.json()["id"])
    answered: set[str] = set()
    first_file: int | None = None
    async with httpx.AsyncClient() as download:
        for batch_id in submitted:
            while True:
                status = (await app.http.request("GET", f"/batches/{batch_id}")).json()
                if status["status"] == "finished":
                    break
                await asyncio.sleep(POLL_SECONDS)
            archive = await download.get(status["response_body_url"])
            with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
                for index, member in enumerate(m for m in tar.getmembers() if m.isfile()):
                    file = tar.extractfile(member)
                    assert file is not None
                    results = json.load(file)
                    if first_file is None and index == 0:
                        first_file = len(results)
                    answered.update(
                        r["operation_id"] for r in results if 200 <= r["status_code"] < 300
                    )
    return Written(
        time.perf_counter() - started, len(answered), created_known=False, first_file=first_file
    )


def measure(
    way: Callable[[MailchimpConnector, list[WriteRecord]], Awaitable[Written]],
    profiles: int,
    lose_first_answer: str | None = None,
) -> Measured:
    """``way`` on a fresh twin."""
    twin = MailchimpTwin(API_KEY)
    if lose_first_answer is not None:
        twin.fail_next(1, 503, path=lose_first_answer, after_apply=True)
    with serve(twin) as url:

        async def main() -> tuple[Written, int]:
            app = connector(twin, url)
            try:
                await app.schema()
                before = _requests(twin)
                written = await way(app, records(profiles))
                return written, _requests(twin) - before
            finally:
                await app.aclose()

        written, requests = asyncio.run(main())
        run = sum(b["finished_operations"] for b in twin.batches())
        return Measured(written, requests, twin.member_count(), run)


def _requests(twin: MailchimpTwin) -> int:
    return sum(sum(by_status.values()) for by_status in twin.request_counts().values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--operations-per-batch", type=int, default=5_000)
    args = parser.parse_args()
    n, per_batch = args.profiles, args.operations_per_batch
    ways: dict[str, tuple[Callable[..., Awaitable[Written]], str]] = {
        "batch subscribe (500)": (batch_subscribe, f"POST /3.0/lists/{DEFAULT_LIST_ID}"),
        f"batch operations ({per_batch:,})": (
            lambda app, batch: batch_operations(app, batch, per_batch),
            "POST /3.0/batches",
        ),
    }
    missed: list[str] = []
    seconds: list[float] = []
    print(f"{n:,} new members, each way into an empty audience")
    print(
        f"{'way':<26} {'profiles/s':>10} {'requests/1,000':>14} {'answered':>9} "
        f"{'created?':>8} {'1st file':>8} | lost answer: {'members':>8} {'ops run':>8}"
    )
    for name, (way, write_path) in ways.items():
        clean = measure(way, n)
        written = clean.written
        seconds.append(written.seconds)
        lost = measure(way, n, lose_first_answer=write_path)
        first = "-" if written.first_file is None else f"{written.first_file:,}"
        # batch subscribe runs no batch operations
        ops = f"{lost.operations_run:,}" if lost.operations_run else "-"
        print(
            f"{name:<26} {n / written.seconds:>10,.0f} {clean.requests * 1000 / n:>14.1f} "
            f"{written.answered:>9,} {'yes' if written.created_known else 'no':>8} "
            f"{first:>8} | {'':13}{lost.members:>8,} {ops:>8}"
        )
        for label, count in (("", clean.members), (" after a lost answer", lost.members)):
            if count != n:
                missed.append(f"{name}: {count:,} members{label}, not {n:,}")
        if written.answered != n:
            missed.append(f"{name}: {written.answered:,} outcomes known, not {n:,}")
    print(f"batch operations take {seconds[1] / seconds[0]:.2f}× the time of batch subscribe")
    return verdict(missed, "every way leaves exactly the members sent, lost answer or not")


if __name__ == "__main__":
    sys.exit(main())
