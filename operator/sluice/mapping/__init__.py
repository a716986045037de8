"""The mapping expression language of ``transformation.mapping``.

``compile_mapping`` checks a mapping against the pipeline's schemas (compile-time problems are
:class:`MappingError`) and returns a :class:`CompiledMapping`, whose ``transform`` turns a
profile into the record sent to the destination (run-time problems are :class:`RecordError`).
The language is described in ``docs/mapping.md``.
"""

from sluice.mapping.compiler import CompiledMapping, compile_mapping
from sluice.mapping.errors import MappingError, RecordError, Step
from sluice.mapping.layouts import TimeLayouts
from sluice.mapping.runtime import Purpose

__all__ = [
    "CompiledMapping",
    "MappingError",
    "Purpose",
    "RecordError",
    "Step",
    "TimeLayouts",
    "compile_mapping",
]
