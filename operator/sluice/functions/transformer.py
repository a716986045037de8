"""What runs, previews and validation use of transformation functions.

:func:`check_source` compiles a source at validation; :class:`FunctionTransformer` turns
profiles into records for a run or a preview; :func:`installed_languages` says which languages
have a runner in this installation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sluice.fastjson import encode_json
from sluice.functions import javascript
from sluice.functions.pool import FunctionError, FunctionPool, FunctionSettings, Outcome
from sluice.functions.source import SourceProblem, check_source
from sluice.functions.values import InputEncoder, OutputChecker
from sluice.mapping import Purpose, RecordError, Step, TimeLayouts
from sluice.model.types import Type

if TYPE_CHECKING:
    from sluice.model.pipeline import Function

__all__ = [
    "FunctionError",
    "FunctionSettings",
    "FunctionTransformer",
    "SourceProblem",
    "check_source",
    "installed_languages",
]


#: The purposes as the workers take them (a dict lookup costs less than an enum's value).
_PURPOSES = {purpose: purpose.value for purpose in Purpose}


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
        results = self.pool.transform(items, self._requests, self._records)
        self.pool.check_health()
        return results

    def _requests(self, items: list[tuple[Mapping[str, Any], Purpose]]) -> object:
        """A batch as a worker takes it: (purpose, input) pairs; for JavaScript, as the JSON
        text V8 parses (its inputs hold JSON's values only)."""
        encode = self.encoder.encode
        batch = [(_PURPOSES[purpose], encode(profile)) for profile, purpose in items]
        return encode_json(batch) if self.encoder.language == "JavaScript" else batch

    def _records(
        self, items: list[tuple[Mapping[str, Any], Purpose]], outcomes: list[Outcome]
    ) -> list[dict[str, object] | RecordError]:
        check = self.checker.check
        records: list[dict[str, object] | RecordError] = []
        for (_, purpose), outcome in zip(items, outcomes, strict=True):
            if outcome.error is not None:
                records.append(RecordError(Step.TRANSFORMATION, outcome.error, ""))
                continue
            try:
                records.append(check(outcome.value, purpose))
            except RecordError as err:
                records.append(err)
        return records

    def close(self) -> None:
        self.pool.close()
