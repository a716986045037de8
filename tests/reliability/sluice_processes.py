"""`sluice` commands run in processes forked from a server that imported Sluice once.

A new `sluice` process spends most of a second importing modules before its export starts
(0.6 s for the command line alone on a 2-core machine): a test that kills and reruns dozens of
exports would spend most of its time there. A fork server (:mod:`multiprocessing`'s
``forkserver``) imports them once and forks every run from itself: each run is still a process
of its own, that SIGKILL ends like any other, running the console script's code on the given
arguments.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path

from sluice.cli import main

#: What a run would import, imported once by the fork server. ``__main__`` is the script that
#: started the tests (pytest's): multiprocessing re-runs it in every child otherwise.
_PRELOADED = [
    "__main__",
    __name__,
    "sluice.engine.export",
    "sluice.apps.hubspot",
    "sluice.warehouses.duckdb",
    "sluice.warehouses.postgresql",
    "sluice.store",  # SQLAlchemy: main() imports it for its error, whatever the command
]
_FORK_SERVER = multiprocessing.get_context("forkserver")


def sluice_process(argv: Sequence[str], output: Path) -> BaseProcess:
    """``sluice ARGV``, to start: its stdout goes to ``output`` with the suffix ``.out``, its
    stderr with ``.err``, and its exit code is the command's."""
    _FORK_SERVER.set_forkserver_preload(_PRELOADED)
    return _FORK_SERVER.Process(
        target=_sluice, args=(list(argv), str(output)), name="sluice", daemon=True
    )


def _sluice(argv: list[str], output: str) -> None:
    for descriptor, suffix in ((1, ".out"), (2, ".err")):
        file = os.open(output + suffix, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(file, descriptor)
        os.close(file)
    sys.exit(main(argv))


def exit_code(process: BaseProcess, timeout: float) -> int:
    """The exit code of a started process, once it ended; one still running after
    ``timeout`` seconds is killed, and fails the test."""
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join()
        raise AssertionError(f"sluice was still running after {timeout:.0f} s")
    return process.exitcode
