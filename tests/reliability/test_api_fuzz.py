"""The read-only API fuzzed from its own OpenAPI document (schemathesis). Operation by operation,
with valid and invalid data, under every kind of credential — a workspace's key, another
workspace's key, an admin key naming either workspace or none, an unknown key, a malformed
header, none: over 5,000 requests. And stateful, with valid data along the document's links as a
client walks the API (from a listing to its first pipeline, from a pipeline to its status and
runs), switching between the workspace's key and the other workspace's: about 680 requests in
some 160 sequences, in which every link leads to a pipeline, and a pipeline listed to one
workspace is a 404 to the other. None answers 5xx, and every answer (status, content type,
headers, body) is one the document describes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from hypothesis.stateful import rule
from schemathesis.checks import CheckFunction
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput

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

#: Keys a walk along the links switches between: the workspace's own, and the other workspace's,
#: for which a pipeline listed to the first does not exist.
WALKING_CREDENTIALS = ("workspace key", "another workspace's key")
#: Sequences of requests in the stateful test, and steps in each (switching the key is a step
#: that sends nothing): about 680 requests in all.
SEQUENCES = 150 * FACTOR
STEPS = 10
#: The links the document declares, as schemathesis names them: from a listing's first pipeline
#: to its own operations, and from a pipeline to its status and runs.
LINKS = frozenset({
    "GET /v1/pipelines -> [200] getPipeline -> GET /v1/pipelines/{id}",
    "GET /v1/pipelines -> [200] getPipelineStatus -> GET /v1/pipelines/{id}/status",
    "GET /v1/pipelines -> [200] listPipelineRuns -> GET /v1/pipelines/{id}/runs",
    "GET /v1/pipelines/{id} -> [200] getPipelineStatus -> GET /v1/pipelines/{id}/status",
    "GET /v1/pipelines/{id} -> [200] listPipelineRuns -> GET /v1/pipelines/{id}/runs",
})  # fmt: skip
#: Walks follow the links the document declares and no others (by default schemathesis adds links
#: it infers from the schemas, which would stand in for a missing one), with valid data only:
#: invalid data is the other test's, and in walks schemathesis 4.32.5 takes some valid requests
#: for invalid ones (an unnamed, empty query parameter it never sends, beside an Authorization
#: header it left out and the walk's key puts back).
WALKS = SchemathesisConfig.from_dict(
    {"phases": {"stateful": {"inference": {"algorithms": []}, "generation": {"mode": "positive"}}}}
)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("api-fuzz")
    store = filled_store(f"sqlite:///{folder / 'store.db'}", folder / "manifests")
    # The default limit on unknown keys stays on: its one unknown key, however often sent from
    # the one test client address, counts once (test_api_security.py tests the limit).
    app = create_app(store, [ADMIN_KEY])
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=WALKS)
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
    excluded = _excluded_checks(credential)

    @hypothesis.given(case=strategy)
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def check(case: Any) -> None:
        # A case made invalid in its headers (Authorization left out or mangled) goes as it was
        # generated: the credential's header would make it valid again, and accepted.
        invalid_headers = case.meta is not None and case.meta.is_negative_at(
            ParameterLocation.HEADER
        )
        sent = {} if invalid_headers else headers
        response = case.call_and_validate(headers=sent, excluded_checks=excluded)
        statuses[response.status_code] += 1

    check()


def _excluded_checks(credential: str) -> list[CheckFunction]:
    excluded = [schemathesis.checks.ignored_auth]  # a malformed key is a 400 here, as in the API
    if credential in REFUSED:
        excluded.append(schemathesis.checks.positive_data_acceptance)
    return excluded


@dataclass(frozen=True)
class Step:
    """A request of a walk: the link that gave its pipeline id (None when none did), the key sent
    with the request whose answer the link read, the key sent with this one, and the status
    answered."""

    link: str | None
    source_credential: str | None
    credential: str
    status: int


def test_walks_along_the_links_get_documented_answers_and_no_5xx(api_schema: Any) -> None:
    steps: list[Step] = []
    settings = hypothesis.settings(
        max_examples=SEQUENCES,
        stateful_step_count=STEPS,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    run_state_machine_as_test(_walking_machine(api_schema, steps), settings=settings)
    statuses = Counter(step.status for step in steps)
    assert sum(n for status, n in statuses.items() if status >= 500) == 0, statuses
    # Every link leads to a pipeline with the key that read the id, and with the other
    # workspace's key to a 404, never to the pipeline.
    followed = [step for step in steps if step.link is not None]
    same_key = Counter(
        s.link for s in followed if s.credential == s.source_credential and s.status == 200
    )
    assert set(same_key) == LINKS, f"links that led to a pipeline: {same_key}"
    other_key = Counter(s.status for s in followed if s.credential != s.source_credential)
    assert other_key[404] > 0 and other_key[200] == 0, other_key


def _walking_machine(schema: Any, steps: list[Step]) -> type[Any]:
    """The schema's state machine, sending the key its walk has switched to and recording each
    request in ``steps``."""

    class Walk(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.credential = WALKING_CREDENTIALS[0]
            self.credential_of_case: dict[str, str] = {}

        @rule(credential=st.sampled_from(WALKING_CREDENTIALS))
        def switch_key(self, credential: str) -> None:
            self.credential = credential

        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"headers": CREDENTIALS[self.credential]}

        def validate_response(
            self,
            response: schemathesis.Response,
            case: schemathesis.Case[Any],
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: Any,
        ) -> None:
            # The base class's validation cannot leave checks out.
            case.validate_response(
                response,
                headers=kwargs["headers"],
                additional_checks=additional_checks,
                excluded_checks=_excluded_checks(self.credential),
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )

        def step(self, step_input: StepInput) -> StepOutput:
            output: StepOutput = super().step(step_input)
            self.credential_of_case[step_input.case.id] = self.credential
            transition = step_input.transition
            if transition is not None and step_input.is_applied:
                link, source = transition.id, self.credential_of_case[transition.parent_id]
            else:
                link, source = None, None
            steps.append(Step(link, source, self.credential, output.response.status_code))
            return output

    return Walk
