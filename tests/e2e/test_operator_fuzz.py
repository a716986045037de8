"""Mutated ExportPipelines through `kubectl apply` to a running `sluice operator` on the
session's control plane: the seed pipeline's spec with arbitrary values at any depth, as
tests/reliability/test_manifest_fuzz.py feeds them to `sluice apply` and local mode.

What the CRD schema refuses never reaches the operator, and it refuses most mutations (a string
where an object belongs, a NaN, an unknown field): the mutations are first tried all at once
by one server-side dry run, and those it admits are applied to the seed pipeline one by one.
The operator stays up with no traceback in its log; each version Sluice refuses is reported in
the pipeline's status with the API's message while the API keeps serving the last valid body
byte for byte; each valid one is taken. Counts and timings are printed (`pytest -s`)."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice.controller.status import stalled_reason
from sluice.installation import INSTALLED
from sluice.manifests import read_manifests
from sluice.model.ids import pipeline_id
from sluice.model.pipeline import Pipeline, pipeline_to_api
from sluice.model.resources import Outcome, validate_resources
from tests.cluster import Cluster
from tests.e2e.test_operator import ExampleNamespace, api_get, wait_ready
from tests.operator_process import OperatorProcess, eventually, running_operator
from tests.reliability.soak import FACTOR
from tests.reliability.test_manifest_fuzz import PIPELINE, far_schedule, mutations, renamed


@pytest.fixture
def operator(
    cluster: Cluster, examples: ExampleNamespace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """An operator watching the examples' namespace alone: the namespaces of earlier tests,
    still being deleted, are not this test's (children applied there fail, and the operator
    logs the failed pass with its traceback)."""
    folder = tmp_path_factory.mktemp("operator")
    with running_operator(cluster, folder, "--watch-namespace", examples.namespace) as running:
        yield running


#: Mutations of the seed pipeline drawn: about 4 in 5 are distinct, and the CRD schema admits
#: about one distinct mutation in 20.
MUTATIONS = 600 * FACTOR
SEED = ("ExportPipeline", PIPELINE)


def admitted_by_the_api_server(
    cluster: Cluster, versions: list[dict[str, Any]], folder: Path
) -> list[dict[str, Any]]:
    """The versions that `kubectl apply` gets past the API server, found by one server-side
    dry run of them all, each in a file of its own under a name of its own."""
    for number, version in enumerate(versions):
        trial = copy.deepcopy(version)
        trial["metadata"]["name"] = f"mutation-{number}"
        (folder / f"{number:05d}.yaml").write_text(yaml.safe_dump(trial))
    tried = cluster.kubectl(
        "apply", "--dry-run=server", "-f", str(folder), check=False, timeout=60.0 * FACTOR
    )
    created = re.findall(r"^exportpipeline\.sluice\.dev/mutation-(\d+) created", tried.stdout, re.M)
    return [versions[int(number)] for number in created]


def sluice_verdict(namespace: ExampleNamespace, spec: Any) -> Outcome:
    """The seed pipeline with ``spec``, validated in process among the namespace's examples."""
    manifests = read_manifests([namespace.folder])
    resources = [
        dataclasses.replace(r, spec=spec) if (r.kind, r.name) == SEED else r
        for r in manifests.resources
    ]
    outcomes = validate_resources(resources, INSTALLED, secrets=manifests.secrets)
    return next(o for o in outcomes if (o.resource.kind, o.resource.name) == SEED)


def status_of_generation(
    running: OperatorProcess, namespace: ExampleNamespace, generation: int
) -> dict[str, Any] | None:
    """The seed pipeline's status once the operator reconciled ``generation``; None before."""
    assert running.process is not None and running.process.poll() is None, "the operator exited"
    status = namespace.status(PIPELINE)
    return status if status.get("observedGeneration") == generation else None


def apply_version(
    running: OperatorProcess, namespace: ExampleNamespace, version: dict[str, Any], file: Path
) -> tuple[str, str | None]:
    """Apply a version of the seed pipeline and check what becomes of it: ``taken``,
    ``refused by Sluice`` (with Sluice's message) or ``refused by the API server``."""
    url = f"/v1/pipelines/{pipeline_id(namespace.namespace, PIPELINE)}"
    before = api_get(running, namespace.key, url)
    file.write_text(yaml.safe_dump(version))
    applied = namespace.kubectl("apply", "-f", str(file), "-o", "json", check=False)
    if applied.returncode != 0:
        # Admitted as a new object by the dry run, refused as a change of the existing one.
        assert api_get(running, namespace.key, url).content == before.content
        return "refused by the API server", None
    stored = json.loads(applied.stdout)
    status = eventually(
        functools.partial(
            status_of_generation, running, namespace, stored["metadata"]["generation"]
        ),
        f"the operator's status of {version['spec'].get('name')!r}",
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    verdict = sluice_verdict(namespace, stored["spec"])
    served = api_get(running, namespace.key, url)
    if verdict.error is None:
        assert isinstance(verdict.value, Pipeline)
        assert conditions["Ready"]["status"] == "True" and "Stalled" not in conditions
        assert served.json() == pipeline_to_api(verdict.value)
        return "taken", None
    message = verdict.error.message
    stalled = conditions["Stalled"]
    assert (stalled["status"], stalled["reason"], stalled["message"]) == (
        "True",
        stalled_reason(verdict.error),
        message,
    )
    assert conditions["Ready"]["message"] == f"{message} (the last valid version keeps running)"
    assert served.content == before.content, message
    api_status = api_get(running, namespace.key, f"{url}/status").json()
    assert (api_status["valid"], api_status["error"]["message"]) == (False, message)
    return "refused by Sluice", message


def test_mutated_pipelines_never_crash_the_operator_nor_replace_a_valid_version(
    cluster: Cluster,
    operator: OperatorProcess,
    examples: ExampleNamespace,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    wait_ready(examples)
    seed = yaml.safe_load((examples.folder / "seed-pipeline.yaml").read_text())
    # No Job falls due while the API's bodies are compared (a Job makes a pipeline `running`).
    seed["spec"] |= far_schedule(datetime.now(UTC))
    file = tmp_path_factory.mktemp("applied") / "pipeline.yaml"
    assert apply_version(operator, examples, renamed([seed], "Fuzz start")[0], file)[0] == "taken"
    started = time.monotonic()
    versions = [
        renamed(version, f"Fuzz step {step}")[0]
        for step, version in enumerate(mutations([seed], MUTATIONS, [SEED[0]]), 1)
    ]
    admitted = admitted_by_the_api_server(cluster, versions, tmp_path_factory.mktemp("dry-run"))
    dry_run = time.monotonic() - started

    fates = [apply_version(operator, examples, version, file) for version in admitted]
    # The seed pipeline as it was, under a name of its own: a valid version is still taken.
    assert apply_version(operator, examples, renamed([seed], "Fuzz end")[0], file)[0] == "taken"
    applied = time.monotonic() - started - dry_run

    assert operator.process is not None and operator.process.poll() is None
    log = operator.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    outcomes = Counter(outcome for outcome, _ in fates)
    outcomes["refused by kubectl or the CRD schema"] = len(versions) - len(admitted)
    reasons = {message for _, message in fates if message is not None}
    print(
        f"\n{len(versions)} mutations: dry run in {dry_run:.1f}s, the {len(admitted)} admitted "
        f"applied one by one in {applied:.1f}s: {dict(outcomes)}; Sluice's reasons: {reasons}"
    )
    assert outcomes["refused by Sluice"] >= 8 * FACTOR and len(reasons) >= 5, outcomes
