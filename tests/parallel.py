"""The whole suite as `make test` runs it: three pytest processes side by side.

- **cluster**: the tests of a real control plane, node, image and chart. They spend most of their
  time waiting on Kubernetes' own processes, and on a fresh machine on building them.
- **reliability**: tests/reliability, faults and fuzzing, long and self-contained.
- **the rest**: everything else, its output on the terminal as it comes.

The first two write to ``build/test-<name>.log``, printed whole once they end. Side by side, the
three keep both cores busy where one run would wait. Each process has its own PostgreSQL
(tests/postgres.py picks free ports); builds shared through the cache wait for each other
(tests/cluster.py's file lock). Exits with the first non-zero status.

    .venv/bin/python -m tests.parallel [pytest options, given to each]
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
#: The groups run beside the rest, by name: their test paths.
BESIDE = {
    "cluster": ("tests/e2e", "tests/image", "tests/chart"),
    "reliability": ("tests/reliability",),
}
#: How often, once the rest has ended, the latest line of a group still running is shown.
PROGRESS_SECONDS = 30.0


def log_of(name: str) -> Path:
    return ROOT / "build" / f"test-{name}.log"


def main(options: list[str]) -> int:
    log_of("").parent.mkdir(exist_ok=True)
    pytest = [sys.executable, "-m", "pytest", *options]
    beside: dict[str, subprocess.Popen[bytes]] = {}
    for name, paths in BESIDE.items():
        print(f"{name} tests ({', '.join(paths)}) run beside the others; log: {log_of(name)}")
        with log_of(name).open("w", encoding="utf-8") as log:
            beside[name] = subprocess.Popen(
                [*pytest, *paths], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
    ignored = [f"--ignore={path}" for paths in BESIDE.values() for path in paths]
    rest = subprocess.Popen([*pytest, *ignored], cwd=ROOT)
    children = (*beside.values(), rest)

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    # Ctrl-C reaches every child through the terminal; a SIGTERM (a CI time-out) is passed on
    # so that each stops its PostgreSQL and its cluster.
    signal.signal(signal.SIGTERM, forward)
    status = rest.wait()
    for name, child in beside.items():
        _wait_showing_progress(name, child)
        print(f"\n== {name} tests ({log_of(name)})", flush=True)
        sys.stdout.write(log_of(name).read_text(encoding="utf-8", errors="replace"))
        status = status or child.returncode
    return status


def _wait_showing_progress(name: str, child: subprocess.Popen[bytes]) -> None:
    shown = ""
    while True:
        try:
            child.wait(timeout=PROGRESS_SECONDS)
            return
        except subprocess.TimeoutExpired:
            latest = _last_line(log_of(name))
            if latest and latest != shown:
                print(f"waiting for the {name} tests: {latest}", flush=True)
                shown = latest


def _last_line(path: Path) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return lines[-1][-120:] if lines else ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
