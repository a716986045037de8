"""The ``sluice`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sluice.apps.catalog import CONNECTORS
from sluice.crds import render_crds
from sluice.manifests import Manifests, Problem, SluiceObject, read_manifests
from sluice.model.errors import format_location
from sluice.model.pipeline import Pipeline, pipeline_to_api
from sluice.model.resources import Outcome, validate_resources


def check_manifests(paths: Sequence[str]) -> tuple[Manifests, list[Outcome], list[Problem]]:
    """Read and validate manifests; the problems come sorted by file and line."""
    manifests = read_manifests(paths)
    outcomes = validate_resources(
        manifests.resources, connectors=CONNECTORS, secrets=manifests.secrets
    )
    problems = list(manifests.problems)
    for obj, outcome in zip(manifests.objects, outcomes, strict=True):
        if outcome.error is not None:
            problems.append(_problem(obj, outcome))
    problems.sort(key=lambda p: (p.file, p.line))
    return manifests, outcomes, problems


def _problem(obj: SluiceObject, outcome: Outcome) -> Problem:
    error = outcome.error
    assert error is not None
    location = error.location
    return Problem(
        file=obj.document.file,
        line=obj.document.line_of(location),
        message=str(error),
        subject=obj.subject,
        status=error.status,
        code=error.code,
        field=format_location(location) or None,
    )


def cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    manifests, _, problems = check_manifests(args.paths)
    checked = len(manifests.objects)
    if args.output == "json":
        report = {
            "valid": not problems,
            "checked": checked,
            "problems": [{k: v for k, v in vars(p).items() if v is not None} for p in problems],
        }
        json.dump(report, out, indent=2)
        out.write("\n")
    else:
        for problem in problems:
            out.write(problem.text() + "\n")
        out.flush()  # the problems come before the summary, even on a shared terminal
        verdict = "all valid" if not problems else f"{len(problems)} problem(s)"
        print(f"checked {checked} Sluice object(s): {verdict}", file=sys.stderr)
    return 1 if problems else 0


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    """Print a pipeline as ``GET /v1/pipelines/{id}`` returns it."""
    manifests, outcomes, _ = check_manifests(args.file)
    matches = [
        (obj, outcome)
        for obj, outcome in zip(manifests.objects, outcomes, strict=True)
        if obj.resource.kind == "ExportPipeline"
        and obj.resource.name == args.name
        and args.namespace in (None, obj.resource.namespace)
    ]
    if len(matches) != 1:
        what = "no" if not matches else "more than one"
        print(
            f"error: {what} ExportPipeline named {args.name!r} (use --namespace)", file=sys.stderr
        )
        return 1
    obj, outcome = matches[0]
    if not isinstance(outcome.value, Pipeline):
        print(_problem(obj, outcome).text(), file=sys.stderr)
        return 1
    json.dump(pipeline_to_api(outcome.value), out, indent=2, ensure_ascii=False)
    out.write("\n")
    return 0


def cmd_crds(args: argparse.Namespace, out: TextIO) -> int:
    rendered = render_crds()
    if args.output is None:
        out.write("---\n".join(rendered.values()))
        return 0
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (folder / name).write_text(text, encoding="utf-8")
        print(f"wrote {folder / name}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sluice", description="Reverse ETL for Kubernetes: export warehouse profiles to apps."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser(
        "validate",
        help="validate manifests and the references between them",
        description="Validate Sluice manifests (files or folders, multi-document YAML) and the "
        "references between the documents given. Exit 0 when all are valid, 1 otherwise.",
    )
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.add_argument("--output", "-o", choices=("text", "json"), default="text")
    validate.set_defaults(run=cmd_validate)

    show = commands.add_parser(
        "show",
        help="print a pipeline as GET /v1/pipelines/{id} returns it",
        description="Print an ExportPipeline of the given manifests as the read-only API "
        "returns it.",
    )
    show.add_argument("name", help="metadata.name of the ExportPipeline")
    show.add_argument("-f", "--file", action="append", required=True, metavar="PATH")
    show.add_argument("-n", "--namespace")
    show.set_defaults(run=cmd_show)

    crds = commands.add_parser("crds", help="print or write the CustomResourceDefinitions")
    crds.add_argument("--output", "-o", metavar="DIR", help="write one file per CRD into DIR")
    crds.set_defaults(run=cmd_crds)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args, out or sys.stdout)
    return code
