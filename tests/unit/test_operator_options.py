"""`sluice operator`'s command line: which namespaces it watches."""

from __future__ import annotations

import pytest

from sluice.cli import build_parser


def test_every_namespace_is_watched_unless_some_are_named() -> None:
    assert build_parser().parse_args(["operator"]).watch_namespace == []


def test_watch_namespace_is_repeatable() -> None:
    args = build_parser().parse_args(
        ["operator", "--watch-namespace", "team-a", "--watch-namespace", "team-b"]
    )
    assert args.watch_namespace == ["team-a", "team-b"]


@pytest.mark.parametrize("text", ["team-*", "Team", "a,b", "a-", "x" * 64])
def test_only_namespace_names_are_accepted(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["operator", "--watch-namespace", text])
    assert exit_.value.code == 2
    assert (
        f"argument --watch-namespace: {text!r} is not a namespace name" in capsys.readouterr().err
    )
