"""The whole suite as `make test` runs it: two pytest processes side by side.

- **cluster**: the tests of a real control plane, node, image and chart (:data:`CLUSTER_PATHS`).
  They spend most of their time waiting on Kubernetes' own processes, and on a fresh machine on
  building them; their output goes to ``build/test-cluster.log``, printed whole once they end.
- **the rest**: everything else, its output on the terminal as it comes.

Side by side, the two keep both cores busy where one run would wait. Each has its own PostgreSQL
(tests/postgres.py picks free ports); builds shared through the cache wait for each other
(tests/cluster.py's file lock). Exits with the first non-zero status of the two.

    .venv/bin/python -m tests.parallel [pytest options, given to both]
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_PATHS = ("tests/e2e", "tests/image", "tests/chart")
LOG = ROOT / "build" / "test-cluster.log"
#: How often, once the rest has ended, the cluster tests' latest line is shown.
PROGRESS_SECONDS = 30.0


def main(options: list[str]) -> int:
    LOG.parent.mkdir(exist_ok=True)
    pytest = [sys.executable, "-m", "pytest", *options]
    print(f"cluster tests ({', '.join(CLUSTER_PATHS)}) run beside the others; log: {LOG}")
    with LOG.open("w", encoding="utf-8") as log:
        cluster = subprocess.Popen(
            [*pytest, *CLUSTER_PATHS], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        rest = subprocess.Popen(
            [*pytest, *(f"--ignore={path}" for path in CLUSTER_PATHS)], cwd=ROOT
        )
        children = (cluster, rest)

        def forward(signum: int, frame: FrameType | None) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signum)

        # Ctrl-C reaches both through the terminal; a SIGTERM (a CI time-out) is passed on so
        # that each stops its PostgreSQL and its cluster.
        signal.signal(signal.SIGTERM, forward)
        rest_status = rest.wait()
        shown = ""
        while True:
            try:
                cluster.wait(timeout=PROGRESS_SECONDS)
                break
            except subprocess.TimeoutExpired:
                latest = _last_line(LOG)
                if latest and latest != shown:
                    print(f"waiting for the cluster tests: {latest}", flush=True)
                    shown = latest
    print(f"\n== cluster tests ({LOG})", flush=True)
    sys.stdout.write(LOG.read_text(encoding="utf-8", errors="replace"))
    return rest_status or cluster.returncode


def _last_line(path: Path) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return lines[-1][-120:] if lines else ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
