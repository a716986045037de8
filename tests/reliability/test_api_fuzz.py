"""The read-only API fuzzed from its own OpenAPI document (schemathesis): every operation, with
valid and invalid data, under every kind of credential — a workspace's key, another workspace's
key, an admin key naming either workspace or none, an unknown key, a malformed header, none.
Over 5,000 generated requests: none answers 5xx, and every answer (status, content type, headers,
body) is one the document describes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st

from sluice.api import create_app
from tests.reliability.soak import FACTOR
from tests.unit.test_api import (
    ADMIN_KEY,
    MARKETING,
    OTHER_SEED_ID,
    SALES_KEY,
    SEED_ID,
    admin_of,
    filled_store,
)

#: Examples per operation, credential and generation mode (fewer where the document allows
#: fewer distinct requests: /healthz has one): about 5,200 requests in all.
EXAMPLES = 80 * FACTOR
MINIMUM_REQUESTS = 5_000

CREDENTIALS: dict[str, dict[str, str]] = {
    "workspace key": MARKETING,
    "another workspace's key": {"Authorization": f"Bearer {SALES_KEY}"},
    "admin key, this workspace": admin_of("marketing"),
    "admin key, the other workspace": admin_of("sales"),
    "admin key, no workspace": {"Authorization": f"Bearer {ADMIN_KEY}"},
    "unknown key": {"Authorization": "Bearer api_nobody_has_this_key"},
    "malformed header": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    "no key": {},
}
#: Denied answers the document lists for every /v1 operation; with them the positive-data
#: check (valid data must be accepted) does not apply.
REFUSED = frozenset({"another workspace's key", "admin key, no workspace", "unknown key",
                     "malformed header", "no key"})  # fmt: skip


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("api-fuzz")
    store = filled_store(f"sqlite:///{folder / 'store.db'}", folder / "manifests")
    # The default limit on unknown keys stays on: its one unknown key, however often sent from
    # the one test client address, counts once (test_api_security.py tests the limit).
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(store, [ADMIN_KEY]))
    store.close()


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE,
                                  schemathesis.GenerationMode.NEGATIVE])  # fmt: skip
def test_generated_requests_get_documented_answers_and_no_5xx(api_schema: Any, mode: Any) -> None:
    statuses: Counter[int] = Counter()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for credential, headers in CREDENTIALS.items():
            _fuzz(operation, mode, headers, credential, statuses)
    sent = sum(statuses.values())
    assert sum(n for status, n in statuses.items() if status >= 500) == 0, statuses
    assert sent * 2 >= MINIMUM_REQUESTS, f"only {sent} requests in {mode.name.lower()} mode"


def _fuzz(
    operation: Any, mode: Any, headers: dict[str, str], credential: str, statuses: Counter[int]
) -> None:
    if mode is schemathesis.GenerationMode.NEGATIVE and not operation.definition.raw.get(
        "parameters"
    ):
        return  # no input to make invalid: /healthz, /readyz, /metrics
    strategy = operation.as_strategy(generation_mode=mode)
    if "{id}" in operation.path:
        # Most generated ids name nothing: mix in the pipelines of both workspaces.
        real = st.sampled_from([SEED_ID, OTHER_SEED_ID]).flatmap(
            lambda id_: operation.as_strategy(generation_mode=mode, path_parameters={"id": id_})
        )
        strategy = st.one_of(strategy, real)
    excluded = [schemathesis.checks.ignored_auth]  # a malformed key is a 400 here, as in the API
    if credential in REFUSED:
        excluded.append(schemathesis.checks.positive_data_acceptance)

    @hypothesis.given(case=strategy)
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call_and_validate(headers=headers, excluded_checks=excluded)
        statuses[response.status_code] += 1

    check()
