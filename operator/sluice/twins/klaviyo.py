"""The Klaviyo twin: a loopback server speaking Klaviyo's REST API for profiles (revision
2026-07-15): profile lookups, bulk profile import jobs and the account.

Tests point the Klaviyo connector at it instead of ``https://a.klaviyo.com``::

    twin = KlaviyoTwin(api_key="pk_...")
    with serve(twin) as base_url:
        ...

or, in a process of its own::

    python -m sluice.twins.klaviyo --listen 127.0.0.1:0 --api-key KEY [--no-rate-limit]
        [--job-polls N]

which prints ``listening on http://127.0.0.1:PORT`` once it accepts connections. What it
implements, and which documented Klaviyo behaviour each part follows, is in
``docs/klaviyo-twin.md``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette

from sluice.twins.common import TwinControls
from sluice.twins.klaviyo_app import RateLimiter, create_app
from sluice.twins.klaviyo_state import ProfileStore
from sluice.twins.serving import parse_listen, run_process, serve

#: The account a twin is, unless told another (Klaviyo account ids are six characters).
DEFAULT_ACCOUNT_ID = "Tw1nAc"

__all__ = ["DEFAULT_ACCOUNT_ID", "KlaviyoTwin", "main", "serve"]


class KlaviyoTwin(TwinControls[RateLimiter]):
    """One Klaviyo account with its profiles, reached with one private API key.

    ``rate_limit`` False turns the per-endpoint limits off. ``job_polls`` is the poll of an
    import job that finds it complete (1, the default: the first poll after its submission);
    jobs are carried out in submission order.
    """

    def __init__(
        self,
        api_key: str,
        *,
        rate_limit: bool = True,
        job_polls: int = 1,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        super().__init__(api_key)
        self.store = ProfileStore(job_polls)
        self.limiter = RateLimiter(rate_limit)
        self.account_id = account_id

    def set_job_polls(self, polls: int) -> None:
        with self.lock:
            self.store.job_polls = max(1, polls)

    # -- seeding and inspection ----------------------------------------------------------------

    def add_profiles(self, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Create or update profiles directly (no rate limit, not counted): each row holds
        profile attributes, checked as an import checks them. Answers the profiles' ids."""
        ids = []
        with self.lock:
            for row in rows:
                profile, refused = self.store.write(None, row)
                if profile is None:
                    assert refused is not None
                    raise ValueError(refused["detail"])
                ids.append(profile.id)
        return ids

    def profiles(self) -> list[dict[str, Any]]:
        """Every profile as ``GET /api/profiles`` returns it, in creation order."""
        with self.lock:
            return [p.to_json("http://twin") for p in self.store.profiles.values()]

    def run_jobs(self) -> None:
        """Carry out every import job still queued."""
        with self.lock:
            self.store.run_jobs()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self._stats.to_json(),
                "creates": self.store.creates,
                "updates": self.store.updates,
                "profiles": len(self.store.profiles),
                "jobs": len(self.store.jobs),
            }

    def reset(self) -> None:
        """Forget every profile, job, fault, statistic and rate-limit window; restore the key."""
        with self.lock:
            self.store.clear()
            self.limiter.reset()
        self.reset_controls()

    def app(self) -> Starlette:
        return create_app(self)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sluice.twins.klaviyo",
        description="A loopback server speaking Klaviyo's profiles API.",
    )
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0))
    parser.add_argument("--api-key", required=True, help="the one valid private API key")
    parser.add_argument("--no-rate-limit", action="store_true", help="turn every limit off")
    parser.add_argument(
        "--job-polls", type=int, default=1, help="the poll of an import job that completes it"
    )
    parser.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID, help="the account's id")
    args = parser.parse_args(argv)
    twin = KlaviyoTwin(
        args.api_key,
        rate_limit=not args.no_rate_limit,
        job_polls=args.job_polls,
        account_id=args.account_id,
    )
    return run_process(twin, *args.listen)


if __name__ == "__main__":
    sys.exit(main())
