"""Every console transcript in the README and docs/ runs as written and prints what it shows.

A ```console block is a transcript: `$ command` lines, each followed by the output it prints
(stdout and stderr together). The commands run in order, in one shell per block, in a copy of
the examples and the chart with `.venv/bin` pointing at this virtualenv and the cached Helm on
PATH, so a block may change files (the README's `sed`) without touching the repository.
Examples that need a cluster, a registry or a warehouse are ```sh blocks, which are not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helm import build_helm, helm_environment, helm_unavailable_reason

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```console\n(.*?)^```$", re.MULTILINE | re.DOTALL)
COMMAND_TIMEOUT = 120.0


def _transcripts() -> list[tuple[str, list[tuple[str, str]]]]:
    """(where, [(command, expected output)]) for every console block."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            steps: list[tuple[str, str]] = []
            for row in match.group(1).splitlines():
                if row.startswith("$ "):
                    steps.append((row[2:], ""))
                else:
                    assert steps, f"{document.name}:{line}: output before any command"
                    command, output = steps[-1]
                    steps[-1] = (command, output + row + "\n")
            found.append((f"{document.relative_to(ROOT)}:{line}", steps))
    return found


TRANSCRIPTS = _transcripts()


def test_the_documents_hold_console_transcripts() -> None:
    assert len(TRANSCRIPTS) >= 3


@pytest.mark.parametrize(("where", "steps"), TRANSCRIPTS, ids=[t[0] for t in TRANSCRIPTS])
def test_a_console_transcript_prints_what_it_shows(
    where: str, steps: list[tuple[str, str]], tmp_path: Path
) -> None:
    for folder in ("examples", "helm"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    environment = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    if any(command.startswith("helm ") for command, _ in steps):
        reason = helm_unavailable_reason()
        if reason is not None:
            pytest.skip(reason)
        environment = helm_environment(environment)
        environment["PATH"] = f"{build_helm().parent}:{environment['PATH']}"
    for command, expected in steps:
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        # Trailing blank lines cannot end a Markdown block: they are not compared.
        printed = result.stdout.rstrip("\n")
        assert printed == expected.rstrip("\n"), f"{where}: `{command}` printed:\n{printed}"
