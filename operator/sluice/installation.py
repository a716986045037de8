"""What this installation can run: the one registry that validation (sluice validate, apply,
local mode, the operator) and the engine both ask, so that a pipeline accepted is a pipeline
that can run.

A connector is here once its module registers a factory in sluice.apps.registry; a function
language once it has a runner (Python always, JavaScript where the V8 binding mini-racer is
installed), and its sources are compiled at validation; DuckDB warehouses where the duckdb
package is installed (the `duckdb` extra: local mode has it, the container image does not).
"""

from __future__ import annotations

import importlib.util

from sluice.apps.registry import MODULES
from sluice.functions.transformer import check_source, installed_languages
from sluice.model.capabilities import Capabilities

_WAREHOUSES = {"PostgreSQL"} | ({"DuckDB"} if importlib.util.find_spec("duckdb") else set())

INSTALLED = Capabilities(
    connectors=frozenset(MODULES),
    languages=installed_languages(),
    warehouses=frozenset(_WAREHOUSES),
    check_source=check_source,
)
