"""What an installation can run, as validation needs to know it (sluice/installation.py says
what this one can run): a pipeline is valid only if it can run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: Compiles a function's source without running it: (language, source) -> what is wrong with
#: it (its str() names the line and column), or None.
SourceCheck = Callable[[str, str], object | None]


@dataclass(frozen=True)
class Capabilities:
    #: Connector codes with a connector: any other code is the API's "connector does not exist".
    connectors: frozenset[str]
    #: Function languages with a runner: any other is "transformation language is not supported".
    languages: frozenset[str]
    #: Warehouse types this installation can read: a Workspace of another type is refused.
    warehouses: frozenset[str]
    #: Compiles function sources at validation; None accepts any source.
    check_source: SourceCheck | None = None
