"""The ``sluice`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sluice import __version__
from sluice.controller.runner import RunnerSettings
from sluice.installation import INSTALLED
from sluice.manifests import Manifests, Problem, SluiceObject, read_manifests
from sluice.mapping import Purpose
from sluice.model.connection import Connection
from sluice.model.errors import format_location
from sluice.model.pipeline import Pipeline, pipeline_to_api
from sluice.model.resources import Outcome, validate_resources
from sluice.model.workspace import Workspace
from sluice.preview import PreviewError, json_default, preview

DEFAULT_STORE = "sqlite:///sluice.db"
LOCAL_LISTEN = "127.0.0.1:8080"
#: An RFC 1123 label, as Kubernetes requires of a namespace's name.
NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

# _heavy_imports_note: the API (FastAPI), the store (SQLAlchemy), the operator (kopf) and the
# CRD renderer are imported by the commands that use them. Every export pod starts this
# command, and importing them all costed each run a third of a second and 17 MB.


def check_manifests(paths: Sequence[str]) -> tuple[Manifests, list[Outcome], list[Problem]]:
    """Read and validate manifests; the problems come sorted by file and line."""
    manifests = read_manifests(paths)
    return (manifests, *validate_manifests(manifests))


def validate_manifests(manifests: Manifests) -> tuple[list[Outcome], list[Problem]]:
    outcomes = validate_resources(manifests.resources, INSTALLED, secrets=manifests.secrets)
    problems = list(manifests.problems)
    for obj, outcome in zip(manifests.objects, outcomes, strict=True):
        if outcome.error is not None:
            problems.append(_problem(obj, outcome))
    problems.sort(key=lambda p: (p.file, p.line))
    return outcomes, problems


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
    manifests, outcomes, problems = check_manifests(args.paths)
    if args.online:
        problems += asyncio.run(_online_problems(manifests, outcomes))
        problems.sort(key=lambda p: (p.file, p.line))
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


async def _online_problems(manifests: Manifests, outcomes: list[Outcome]) -> list[Problem]:
    """Each valid pipeline's output schema against the schema its application has now: a
    property the application lacks, or holds with another type, is found before a run."""
    from sluice.controller.runner import runner_secrets  # noqa: PLC0415
    from sluice.discovery import DiscoveryError, application_schema  # noqa: PLC0415
    from sluice.model.alignment import output_alignment_error  # noqa: PLC0415
    from sluice.model.types import Type  # noqa: PLC0415

    discovered: dict[tuple[str, int], Type | str] = {}
    problems = []
    for obj, outcome in zip(manifests.objects, outcomes, strict=True):
        pipeline = outcome.value
        if not isinstance(pipeline, Pipeline):
            continue
        resources = _pipeline_resources(pipeline, outcomes, quiet=True)
        if resources is None:
            continue
        workspace, connection = resources
        key = (connection.namespace, connection.id)
        if key not in discovered:
            _, credentials = runner_secrets(workspace, connection, manifests.secrets)
            try:
                discovered[key] = await application_schema(connection, credentials)
            except DiscoveryError as err:
                discovered[key] = f"the application's schema could not be read: {err}"
        destination = discovered[key]
        if isinstance(destination, str):
            message: str | None = destination
        else:
            message = output_alignment_error(
                pipeline.out_schema, destination, pipeline.export_mode, pipeline.matching_out
            )
        if message is not None:
            problems.append(
                Problem(
                    file=obj.document.file,
                    line=obj.document.line_of(("spec", "outSchema")),
                    message=message,
                    subject=obj.subject,
                    field="outSchema",
                )
            )
    return problems


def select_pipeline(
    manifests: Manifests, outcomes: list[Outcome], name: str | None, namespace: str | None
) -> Pipeline | None:
    """The one valid ExportPipeline named so (any, if the manifests hold one); else say why."""
    matches = [
        (obj, outcome)
        for obj, outcome in zip(manifests.objects, outcomes, strict=True)
        if obj.resource.kind == "ExportPipeline"
        and name in (None, obj.resource.name)
        and namespace in (None, obj.resource.namespace)
    ]
    named = f" named {name!r}" if name else ""
    if not matches:
        print(f"error: no ExportPipeline{named} in the manifests given", file=sys.stderr)
        return None
    if len(matches) > 1:
        found = ", ".join(f"{o.resource.namespace}/{o.resource.name}" for o, _ in matches)
        print(
            f"error: more than one ExportPipeline{named} ({found}): choose one with its name "
            "and --namespace",
            file=sys.stderr,
        )
        return None
    obj, outcome = matches[0]
    if not isinstance(outcome.value, Pipeline):
        print(_problem(obj, outcome).text(), file=sys.stderr)
        return None
    return outcome.value


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    """Print a pipeline as ``GET /v1/pipelines/{id}`` returns it."""
    manifests, outcomes, _ = check_manifests(args.file)
    pipeline = select_pipeline(manifests, outcomes, args.name, args.namespace)
    if pipeline is None:
        return 1
    json.dump(pipeline_to_api(pipeline), out, indent=2, ensure_ascii=False)
    out.write("\n")
    return 0


def cmd_preview(args: argparse.Namespace, out: TextIO) -> int:
    """Print, for each sample profile, the record the pipeline would send or why it would not."""
    manifests = read_manifests([args.file])
    if args.workspace:
        # The workspace path lends its Workspace, Connections and Secrets; nothing else.
        context = read_manifests([args.workspace])
        manifests.objects += [o for o in context.objects if o.resource.kind != "ExportPipeline"]
        manifests.problems += context.problems
        manifests.secrets.update(context.secrets)
    outcomes, _ = validate_manifests(manifests)
    pipeline = select_pipeline(manifests, outcomes, args.pipeline, args.namespace)
    if pipeline is None:
        return 1
    workspace = next(
        o.value
        for o in outcomes
        if isinstance(o.value, Workspace) and o.value.namespace == pipeline.namespace
    )
    try:
        with _open_text(args.profiles) as lines:
            for outcome in preview(
                pipeline, workspace.profile_schema, lines, Purpose(args.purpose)
            ):
                out.write(json.dumps(outcome.to_json(), ensure_ascii=False, default=json_default))
                out.write("\n")
    except (OSError, PreviewError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _open_text(path: str) -> contextlib.AbstractContextManager[TextIO]:
    if path == "-":
        return contextlib.nullcontext(sys.stdin)
    return open(path, encoding="utf-8")


def cmd_apply(args: argparse.Namespace, out: TextIO) -> int:
    """Validate manifests against the store's state and save them, like ``kubectl apply``."""
    manifests = read_manifests(args.file)
    if manifests.problems:
        # An unreadable file must not look like deleted objects: nothing is applied.
        for problem in manifests.problems:
            out.write(problem.text() + "\n")
        print("nothing applied: fix the manifests first", file=sys.stderr)
        return 1
    from sluice.reconcile import NothingToPruneError, apply, apply_set_of  # noqa: PLC0415
    from sluice.store import Store  # noqa: PLC0415 - see the note at DEFAULT_STORE

    store = Store(args.store)
    try:
        applied = apply(store, manifests, INSTALLED, apply_set_of(args.file), prune=args.prune)
    except NothingToPruneError as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 1
    finally:
        store.close()
    for item in applied:
        out.write(item.line() + "\n")
    return 1 if any(item.error for item in applied) else 0


def admin_api_keys() -> list[str]:
    """The admin keys given in ``$SLUICE_ADMIN_API_KEYS`` (comma-separated)."""
    keys = [key.strip() for key in os.environ.get("SLUICE_ADMIN_API_KEYS", "").split(",")]
    return [key for key in keys if key]


def cmd_api(args: argparse.Namespace, out: TextIO) -> int:
    """Serve the read-only API on the store until interrupted."""
    try:
        from sluice.api import serve  # noqa: PLC0415 - see the note at DEFAULT_STORE

        serve(args.store, args.listen, admin_api_keys())
    except ValueError as err:  # a malformed or busy --listen, a malformed admin key
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_operator(args: argparse.Namespace, out: TextIO) -> int:
    """Reconcile the cluster's resources until SIGINT or SIGTERM."""
    # Imported here: kopf and the Kubernetes client are heavy, and only this command needs them.
    from sluice.controller.process import run_operator  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # One line per request or handler call would bury what the operator decided.
    for chatty in ("httpx", "httpx2", "kopf.objects", "uvicorn.access"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        runner = RunnerSettings.from_env(os.environ)
        asyncio.run(
            run_operator(
                args.store,
                api_listen=None if args.no_api else args.api_listen,
                admin_keys=admin_api_keys(),
                runner=runner,
                liveness=args.liveness,
                lease_namespace=args.lease_namespace if args.leader_elect else None,
                namespaces=args.watch_namespace,
            )
        )
    except ValueError as err:  # a malformed setting, a busy --api-listen
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def namespace_name(text: str) -> str:
    """A namespace name as Kubernetes accepts it (kopf would take other text for a pattern)."""
    if NAMESPACE_NAME.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a namespace name")
    return text


def cmd_local(args: argparse.Namespace, out: TextIO) -> int:
    """Apply and watch manifests, serve the API, run the pipelines on their schedules."""
    from sluice.local.mode import run_local  # noqa: PLC0415 - see the note at DEFAULT_STORE

    try:
        return asyncio.run(
            run_local(
                args.paths,
                args.store,
                listen=args.listen or (None if args.once else LOCAL_LISTEN),
                once=args.once,
                state=Path(args.state),
                admin_keys=admin_api_keys(),
                out=out,
            )
        )
    except ValueError as err:  # a malformed or busy --listen
        print(f"error: {err}", file=sys.stderr)
        return 1


def cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    """Run one export: from the operator's config file, or from manifests."""
    from sluice.engine.config import ConfigError, load_config_file  # noqa: PLC0415
    from sluice.engine.export import EXIT_CODES, config_from_resources, run_export  # noqa: PLC0415

    try:
        if args.config is not None:
            config = load_config_file(args.config)
        else:
            manifests, outcomes, _ = check_manifests(args.file)
            pipeline = select_pipeline(manifests, outcomes, args.pipeline, args.namespace)
            if pipeline is None:
                return 1
            resources = _pipeline_resources(pipeline, outcomes)
            if resources is None:
                return 1
            config = config_from_resources(pipeline, *resources, manifests.secrets)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    summary = run_export(config, full=args.full, termination_log=args.termination_log, out=out)
    return EXIT_CODES[summary.outcome]


def _pipeline_resources(
    pipeline: Pipeline, outcomes: list[Outcome], *, quiet: bool = False
) -> tuple[Workspace, Connection] | None:
    """The Workspace and Connection a valid pipeline was validated with."""
    values = [outcome.value for outcome in outcomes]
    workspace = next(
        (v for v in values if isinstance(v, Workspace) and v.namespace == pipeline.namespace),
        None,
    )
    connection = next(
        (
            v
            for v in values
            if isinstance(v, Connection)
            and v.namespace == pipeline.namespace
            and v.id == pipeline.connection
        ),
        None,
    )
    if workspace is None or connection is None:
        if not quiet:
            print(
                "error: the pipeline's Workspace and Connection must be in the manifests",
                file=sys.stderr,
            )
        return None
    return workspace, connection


def _select_resource(
    outcomes: list[Outcome], kind: str, wanted: str | None, namespace: str | None
) -> Connection | Workspace | None:
    """The one valid ``kind`` named ``wanted`` (its metadata.name, or a Connection's id; any
    when None) in ``namespace`` (any when None); else say why on stderr."""
    matches = [
        o
        for o in outcomes
        if o.resource.kind == kind
        and namespace in (None, o.resource.namespace)
        and (
            wanted is None
            or wanted == o.resource.name
            or (isinstance(o.value, Connection) and wanted == str(o.value.id))
        )
    ]
    named = f" {wanted!r}" if wanted else ""
    if len(matches) != 1:
        found = ", ".join(f"{o.resource.namespace}/{o.resource.name}" for o in matches)
        reason = f"more than one ({found}): choose with -n" if matches else "none in the manifests"
        print(f"error: {kind}{named}: {reason}", file=sys.stderr)
        return None
    (match,) = matches
    if match.error is not None:
        print(f"error: {kind} {match.resource.name}: {match.error}", file=sys.stderr)
        return None
    assert isinstance(match.value, Connection | Workspace)
    return match.value


def cmd_schema(args: argparse.Namespace, out: TextIO) -> int:
    """Print the schema an application or a profiles table has now, as YAML to paste."""
    from sluice.discovery import (  # noqa: PLC0415
        DiscoveryError,
        application_schema,
        profile_schema,
        schema_yaml,
        select,
    )

    wanted = args.connection or args.workspace
    kind = "Connection" if args.connection else "Workspace"
    paths = list(args.file or [])
    by_file = os.path.exists(wanted)
    if by_file:
        paths.append(wanted)
    if not paths:
        print(f"error: give the manifests holding the {kind} with -f", file=sys.stderr)
        return 1
    manifests, outcomes, _ = check_manifests(paths)
    found = _select_resource(outcomes, kind, None if by_file else wanted, args.namespace)
    if found is None:
        return 1
    try:
        skipped: list[str] = []
        if isinstance(found, Connection):
            secret = (found.namespace, found.credentials_secret or "")
            credentials = manifests.secrets.get(secret, {})
            schema = asyncio.run(application_schema(found, credentials))
        else:
            dsn = found.warehouse.dsn_secret
            secret_values = manifests.secrets.get((found.namespace, dsn.name if dsn else ""), {})
            schema, skipped = profile_schema(found, secret_values.get(dsn.key) if dsn else None)
        if args.properties:
            schema = select(schema, [p.strip() for p in args.properties.split(",") if p.strip()])
    except DiscoveryError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    out.write(schema_yaml(schema))
    for column in skipped:
        print(f"note: column {column} left out: Sluice cannot read its type", file=sys.stderr)
    return 0


def cmd_crds(args: argparse.Namespace, out: TextIO) -> int:
    from sluice.crds import render_crds  # noqa: PLC0415 - see the note at DEFAULT_STORE

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


def add_store_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--store",
        default=os.environ.get("SLUICE_STORE", DEFAULT_STORE),
        metavar="URL",
        help=f"sqlite:///PATH or postgresql+psycopg://... (default: {DEFAULT_STORE})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sluice", description="Reverse ETL for Kubernetes: export warehouse profiles to apps."
    )
    parser.add_argument("--version", action="version", version=f"sluice {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser(
        "validate",
        help="validate manifests and the references between them",
        description="Validate Sluice manifests (files or folders, multi-document YAML) and the "
        "references between the documents given. Exit 0 when all are valid, 1 otherwise.",
    )
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.add_argument("--output", "-o", choices=("text", "json"), default="text")
    validate.add_argument(
        "--online",
        action="store_true",
        help="also check each pipeline's outSchema against its application's schema now",
    )
    validate.set_defaults(run=cmd_validate)

    show = commands.add_parser(
        "show",
        help="print a pipeline as GET /v1/pipelines/{id} returns it",
        description="Print an ExportPipeline of the given manifests as the read-only API "
        "returns it.",
    )
    show.add_argument("name", nargs="?", help="metadata.name of the ExportPipeline")
    show.add_argument("-f", "--file", action="append", required=True, metavar="PATH")
    show.add_argument("-n", "--namespace")
    show.set_defaults(run=cmd_show)

    preview_command = commands.add_parser(
        "preview",
        help="show what a pipeline would send for sample profiles",
        description="Apply a pipeline's filter and mapping to sample profiles (JSON lines shaped "
        "like the profile schema) and print, for each, the record an export would send or the "
        "step and message of its error.",
    )
    preview_command.add_argument("-f", "--file", required=True, metavar="PATH")
    preview_command.add_argument(
        "--workspace",
        metavar="PATH",
        help="file or folder of manifests with the Workspace and the Connection",
    )
    preview_command.add_argument(
        "--profiles", required=True, metavar="FILE", help="JSON lines; - reads standard input"
    )
    preview_command.add_argument("--purpose", choices=("create", "update"), default="create")
    preview_command.add_argument("--pipeline", metavar="NAME", help="when FILE holds several")
    preview_command.add_argument("-n", "--namespace", help="its namespace, when FILE holds several")
    preview_command.set_defaults(run=cmd_preview)

    apply_command = commands.add_parser(
        "apply",
        help="validate manifests and save them into the store",
        description="Validate manifests against the store's state and save them; an invalid new "
        "version is recorded beside the last valid one, which stays in force. The objects "
        "belong to the paths given (their apply set) until other paths apply them. Exit 1 when "
        "any object is invalid.",
    )
    apply_command.add_argument("-f", "--file", action="append", required=True, metavar="PATH")
    add_store_option(apply_command)
    apply_command.add_argument(
        "--prune",
        action="store_true",
        help="remove the stored objects these same paths applied and no longer hold (objects "
        "other paths or the operator applied stay); manifests without any Sluice object prune "
        "nothing and exit 1",
    )
    apply_command.set_defaults(run=cmd_apply)

    api_command = commands.add_parser(
        "api",
        help="serve the read-only API (/v1/pipelines) on a store",
        description="Serve GET /v1/pipelines, /v1/pipelines/{id} and its runs from the store. "
        "Workspace keys come from the store; admin keys from $SLUICE_ADMIN_API_KEYS "
        "(comma-separated).",
    )
    add_store_option(api_command)
    api_command.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT")
    api_command.set_defaults(run=cmd_api)

    local_command = commands.add_parser(
        "local",
        help="apply and watch manifests, serve the API, run the pipelines on their schedules",
        description="Local mode: apply the manifests under PATH to the store (pruning what these "
        "same paths applied and no longer hold) and keep watching them, serve the read-only "
        "API, and run every enabled pipeline on its schedule as a child `sluice export` (as the "
        "operator's CronJobs do). Ctrl-C stops cleanly.",
    )
    local_command.add_argument("paths", nargs="+", metavar="PATH")
    add_store_option(local_command)
    local_command.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help=f"where the API listens (default {LOCAL_LISTEN}; with --once, only if given)",
    )
    local_command.add_argument(
        "--once",
        action="store_true",
        help="run every enabled pipeline once and exit: 0 all succeeded, 2 partially failed, "
        "1 failed",
    )
    local_command.add_argument(
        "--state",
        default=".sluice",
        metavar="DIR",
        help="where each run's config and credentials are written (default .sluice)",
    )
    local_command.set_defaults(run=cmd_local)

    operator_command = commands.add_parser(
        "operator",
        help="run the Kubernetes operator (and the read-only API)",
        description="Watch Workspaces, Connections and ExportPipelines in every namespace (or "
        "those given with --watch-namespace), reconcile them into the store and into one CronJob "
        "per pipeline, and report in their status. Kubeconfig: in-cluster, then $KUBECONFIG or "
        "~/.kube/config. Runner pods: $SLUICE_RUNNER_IMAGE, $SLUICE_RUNNER_PULL_POLICY, "
        "$SLUICE_RUNNER_RESOURCES, $SLUICE_RUNNER_SERVICE_ACCOUNT.",
    )
    add_store_option(operator_command)
    api_choice = operator_command.add_mutually_exclusive_group()
    api_choice.add_argument("--api-listen", default="127.0.0.1:8080", metavar="HOST:PORT")
    api_choice.add_argument("--no-api", action="store_true", help="do not serve the API")
    operator_command.add_argument(
        "--liveness",
        metavar="URL",
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8081/healthz",
    )
    operator_command.add_argument(
        "--leader-elect",
        action="store_true",
        help="elect a leader through a Lease: with several replicas, one writes at a time",
    )
    operator_command.add_argument(
        "--lease-namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        metavar="NAMESPACE",
        help="where the Lease sluice-operator lives (default: $POD_NAMESPACE or default)",
    )
    operator_command.add_argument(
        "--watch-namespace",
        action="append",
        default=[],
        type=namespace_name,
        metavar="NS",
        help="watch only this namespace (repeatable; default: every namespace)",
    )
    operator_command.set_defaults(run=cmd_operator)

    export_command = commands.add_parser(
        "export",
        help="run one export of a pipeline: warehouse to application",
        description="Read the profiles that changed since the last run from the warehouse, "
        "match them with the application's users, transform them and write them. The summary "
        "goes to stdout and to the termination-message file. Exit 0 succeeded, 2 partially "
        "failed, 1 failed.",
    )
    source = export_command.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="FILE", help="the export config the operator writes")
    source.add_argument(
        "-f",
        "--file",
        nargs="+",
        metavar="PATH",
        help="manifests: Workspace, Connection, ExportPipeline and the Secrets they name",
    )
    export_command.add_argument("--pipeline", metavar="NAME", help="which ExportPipeline (-f)")
    export_command.add_argument("--namespace", metavar="NS", help="its namespace (-f)")
    export_command.add_argument(
        "--full", action="store_true", help="re-evaluate every profile, changed or not"
    )
    export_command.add_argument(
        "--termination-log",
        metavar="PATH",
        help="where to write the summary for Kubernetes (default: $SLUICE_TERMINATION_LOG, or "
        "/dev/termination-log when it exists)",
    )
    export_command.set_defaults(run=cmd_export)

    schema_command = commands.add_parser(
        "schema",
        help="print an application's or a profiles table's schema, as YAML to paste",
        description="Print the schema a Connection's application has now (what outSchema "
        "must align with, read-only properties left out) or the schema of a Workspace's "
        "profiles table, as YAML ready to paste under outSchema: or profileSchema:.",
    )
    subject = schema_command.add_mutually_exclusive_group(required=True)
    subject.add_argument(
        "--connection", metavar="FILE_OR_NAME", help="a Connection: its file, name or id"
    )
    subject.add_argument(
        "--workspace", metavar="FILE_OR_NAME", help="a Workspace: its file or name"
    )
    schema_command.add_argument(
        "-f", "--file", action="append", metavar="PATH", help="manifests holding it (and Secrets)"
    )
    schema_command.add_argument("-n", "--namespace", help="its namespace, when several match")
    schema_command.add_argument(
        "--properties", metavar="A,B.C", help="only these properties (an object keeps its own)"
    )
    schema_command.set_defaults(run=cmd_schema)

    crds = commands.add_parser("crds", help="print or write the CustomResourceDefinitions")
    crds.add_argument("--output", "-o", metavar="DIR", help="write one file per CRD into DIR")
    crds.set_defaults(run=cmd_crds)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sluice.store import StoreUnavailableError  # noqa: PLC0415 - SQLAlchemy only when needed

    try:
        code: int = args.run(args, out or sys.stdout)
    except StoreUnavailableError as unavailable:
        print(f"error: {unavailable}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`sluice show … | head`): nothing more to say, and nowhere to
        # say it; stdout goes to /dev/null so that the interpreter's last flush is silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code
