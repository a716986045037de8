"""Transformation functions (``transformation.function``): JavaScript or Python ``transform``
run in sandboxed persistent workers. ``docs/functions.md`` is the user's side of it.

:func:`check_source` compiles a source at validation; :class:`FunctionTransformer` turns
profiles into records for a run or a preview; :func:`installed_languages` says which languages
have a runner in this installation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sluice.functions import javascript
from sluice.functions.pool import FunctionError, FunctionPool, FunctionSettings
from sluice.functions.source import SourceProblem, check_source
from sluice.functions.values import InputEncoder, OutputChecker
from sluice.mapping import Purpose, RecordError, Step, TimeLayouts
from sluice.model.pipeline import Function
from sluice.model.types import Type

__all__ = [
    "FunctionError",
    "FunctionSettings",
    "FunctionTransformer",
    "SourceProblem",
    "check_source",
    "installed_languages",
]


def installed_languages() -> frozenset[str]:
    """Python always (the workers run this interpreter); JavaScript where mini-racer is."""
    return frozenset({"Python"} | ({"JavaScript"} if javascript.available() else set()))


class FunctionTransformer:
    """A function's profiles-to-records step, for one run: the workers start with
    :meth:`start` and stop with :meth:`close`."""

    @classmethod
    def of(
        cls, function: Function, in_schema: Type, out_schema: Type, time_layouts: TimeLayouts
    ) -> FunctionTransformer:
        """The transformer of a pipeline's function, with the settings of the environment."""
        return cls(
            language=function.language,
            source=function.source,
            preserve_json=function.preserve_json,
            in_paths=function.in_paths,
            out_paths=function.out_paths,
            in_schema=in_schema,
            out_schema=out_schema,
            time_layouts=time_layouts,
        )

    def __init__(
        self,
        *,
        language: str,
        source: str,
        preserve_json: bool,
        in_paths: Sequence[str],
        out_paths: Sequence[str],
        in_schema: Type,
        out_schema: Type,
        time_layouts: TimeLayouts | None,
        settings: FunctionSettings | None = None,
    ) -> None:
        self.encoder = InputEncoder(in_schema, tuple(in_paths), language, preserve_json)
        self.checker = OutputChecker(
            out_schema, tuple(out_paths), language, preserve_json, time_layouts
        )
        #: Whether ``transform`` takes the purpose (known once started): a profile is then
        #: never upserted, where the purpose would be a guess.
        self.uses_purpose = True
        self.pool = FunctionPool(
            language,
            source,
            marked=self.encoder.marked,
            settings=settings or FunctionSettings.from_environment(),
        )

    def start(self) -> None:
        """Start a worker: a source whose top level fails raises :class:`FunctionError`."""
        self.uses_purpose = self.pool.start()

    def transform(
        self, items: Sequence[tuple[Mapping[str, Any], Purpose]]
    ) -> list[dict[str, object] | RecordError]:
        """One record, or the error that stopped it, per (profile, purpose)."""
        outcomes = self.pool.transform(
            [(purpose.value, self.encoder.encode(profile)) for profile, purpose in items]
        )
        results: list[dict[str, object] | RecordError] = []
        for (_, purpose), outcome in zip(items, outcomes, strict=True):
            if outcome.text is None:
                results.append(RecordError(Step.TRANSFORMATION, outcome.error or "", ""))
                continue
            try:
                results.append(self.checker.check(outcome.text, purpose))
            except RecordError as err:
                results.append(err)
        self.pool.check_health()
        return results

    def close(self) -> None:
        self.pool.close()
