"""How fast pipelines validate, as ratios to a baseline measured in the same run.

When a Workspace or Connection changes, the operator re-validates every pipeline that depends on
it, so validation must stay cheap next to merely walking the document. The baseline is
``copy.deepcopy`` of the same spec: one visit of every node, no checks. Target: validating a
pipeline costs at most 25 deep copies of it, at any schema size.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sluice.model.pipeline import validate_pipeline
from sluice.model.types import parse_type
from tests.support import SEED_ID, marketing_context, seed_spec

TARGET_RATIO = 25.0


def per_second(work: Callable[[], Any], seconds: float = 1.0) -> float:
    """Calls per second of ``work``, over about ``seconds`` of wall time (best of 3 rounds)."""
    best = 0.0
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            work()
            count += 1
        best = max(best, count / elapsed)
    return best


def wide_spec(extra: int) -> dict[str, Any]:
    """The seed pipeline mapping ``extra`` more string properties, one to one."""
    spec = seed_spec()
    contact = spec["outSchema"]["properties"][0]["type"]["properties"]
    for i in range(extra):
        name = f"attribute_{i}"
        spec["inSchema"]["properties"].append(
            {"name": name, "type": {"kind": "string", "maxLength": 100}, "readOptional": True}
        )
        contact.append({"name": name, "type": {"kind": "string"}, "nullable": True})
        spec["transformation"]["mapping"][f"contact.{name}"] = name
    return spec


def main() -> int:
    failed = False
    header = f"{'pipeline':<28}{'validations/s':>15}{'deepcopies/s':>15}{'ratio':>9}"
    print(f"{header}  target ≤ {TARGET_RATIO:g}")
    for label, extra in (("seed (4 in, 3 out)", 0), ("wide (204 in, 203 out)", 200)):
        spec = wide_spec(extra)
        context = marketing_context(workspace=_workspace_for(spec))
        validated = per_second(partial(validate_pipeline, "marketing", "p", spec, SEED_ID, context))
        copied = per_second(partial(copy.deepcopy, spec))
        ratio = copied / validated
        failed |= ratio > TARGET_RATIO
        print(f"{label:<28}{validated:>15,.0f}{copied:>15,.0f}{ratio:>9.1f}")
    return 1 if failed else 0


def _workspace_for(spec: dict[str, Any]) -> Any:
    """The examples' workspace, with the profile schema extended to the spec's input schema."""
    workspace = marketing_context().workspace
    assert workspace is not None
    return replace(workspace, profile_schema=parse_type(spec["inSchema"]))


if __name__ == "__main__":
    sys.exit(main())
