"""`sluice validate` and `sluice show`, as a GitOps repository's CI would run them."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sluice.cli import main
from sluice.installation import INSTALLED
from tests.support import EXAMPLES, ROOT, example_names, example_spec, seed_with_function

#: The examples' Sluice objects in `marketing` (the `repo` fixture's), and its pipelines.
MARKETING = example_names("marketing")
PIPELINES = example_names("marketing", "ExportPipeline")


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the marketing examples (not the demo's), as a user's GitOps repository."""
    shutil.copytree(EXAMPLES, tmp_path / "manifests", ignore=shutil.ignore_patterns("demo"))
    return tmp_path / "manifests"


def edit_yaml(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, fragment: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if fragment in line:
            return number
    raise AssertionError(fragment)


def assert_one_problem(
    validated: list[Path], path: Path, fragment: str, subject: str, message: str
) -> None:
    """`sluice validate` of `validated` exits 1 and prints one problem, at the line of
    `fragment` in `path`."""
    code, out = run("validate", *map(str, validated))
    assert (code, out) == (1, f"{path}:{line_of(path, fragment)}: {subject}: {message}\n")


def test_the_examples_are_valid() -> None:
    assert run("validate", str(EXAMPLES)) == (0, "")


def test_a_problem_is_reported_at_the_line_of_its_member(repo: Path) -> None:
    pipeline = repo / "seed-pipeline.yaml"
    edit_yaml(pipeline, "operator: is\n", "operator: equals\n")
    assert_one_problem(
        [repo],
        pipeline,
        "operator: equals",
        "ExportPipeline/marketing/export-customers",
        'filter is not valid: operator "equals" is not valid',
    )


def test_unknown_fields_are_located(repo: Path) -> None:
    pipeline = repo / "seed-pipeline.yaml"
    edit_yaml(pipeline, "  exportMode: CreateOnly\n", "  exportMode: CreateOnly\n  exportmode: x\n")
    code, out = run("validate", str(pipeline), str(repo / "workspace.yaml"))
    assert code == 1
    assert f"{pipeline}:{line_of(pipeline, 'exportmode: x')}:" in out
    assert 'unknown field "exportmode" in spec (did you mean "exportMode"?)' in out


def test_json_output_for_machines(repo: Path) -> None:
    edit_yaml(repo / "hubspot-connection.yaml", "connector: hubspot", "connector: hubspott")
    code, out = run("validate", "--output", "json", str(repo))
    report = json.loads(out)
    assert code == 1 and report["valid"] is False and report["checked"] == len(MARKETING)
    by_subject = {p["subject"]: p for p in report["problems"]}
    connection = by_subject["Connection/marketing/hubspot"]
    assert (connection["status"], connection["code"], connection["field"]) == (
        422,
        "ConnectorNotExist",
        "spec.connector",
    )
    assert connection["message"].startswith("connector does not exist")
    # Every pipeline using that connection says so; the others are valid.
    hubspot = (example_spec("Connection", "hubspot")["id"], "hubspot")  # by id or by name
    using = [n for n in PIPELINES if example_spec("ExportPipeline", n)["connection"] in hubspot]
    assert {p["subject"] for p in report["problems"]} == {
        "Connection/marketing/hubspot",
        *(f"ExportPipeline/marketing/{name}" for name in using),
    }


def test_a_connector_this_installation_lacks_does_not_exist(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installation without the Mailchimp connector (Mailchimp is in the API's catalog):
    # every run would fail, so the Connection is refused as the API refuses an unknown one.
    only_hubspot = dataclasses.replace(INSTALLED, connectors=frozenset({"hubspot"}))
    monkeypatch.setattr("sluice.cli.INSTALLED", only_hubspot)
    connection = repo / "hubspot-connection.yaml"
    edit_yaml(connection, "connector: hubspot", "connector: mailchimp")
    assert_one_problem(
        [connection, repo / "workspace.yaml"],
        connection,
        "connector: mailchimp",
        "Connection/marketing/hubspot",
        'connector does not exist (no connector "mailchimp"; known: hubspot)',
    )


@pytest.mark.parametrize(
    ("language", "source", "problem"),
    [
        (
            "Python",
            'def transform(profile):\n    return {"contact": {"firstname": profile}\n',
            "line 2, column 12: SyntaxError: '{' was never closed",
        ),
        (
            "JavaScript",
            "function transform(profile) {\n  return { contact: {} };\n",
            "line 2, column 26: SyntaxError: Unexpected end of input",
        ),
    ],
)
def test_a_function_that_does_not_compile_is_refused_with_its_line_and_column(
    repo: Path, language: str, source: str, problem: str
) -> None:
    # The line and column are the source's own; the problem is reported at its member.
    pipeline = repo / "seed-pipeline.yaml"
    pipeline.write_text(seed_with_function(language, source))
    assert_one_problem(
        [repo],
        pipeline,
        "source: |",
        "ExportPipeline/marketing/export-customers",
        f"transformation function is not valid: {problem}",
    )


def test_a_function_source_must_define_transform(repo: Path) -> None:
    pipeline = repo / "seed-pipeline.yaml"
    pipeline.write_text(seed_with_function("Python", "def transfrom(profile):\n    return {}\n"))
    assert_one_problem(
        [repo],
        pipeline,
        "source: |",
        "ExportPipeline/marketing/export-customers",
        "transformation function is not valid: line 1, column 1: "
        "Function 'transform' is not defined",
    )


def test_the_seed_pipeline_with_a_function_is_valid(repo: Path) -> None:
    for language in ("Python", "JavaScript"):
        (repo / "seed-pipeline.yaml").write_text(seed_with_function(language))
        assert run("validate", str(repo)) == (0, "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: sluice.dev/v1\nkind: [unclosed\n", "malformed YAML"),
        ("apiVersion: sluice.dev/v2\nkind: Workspace\n", 'unknown version "sluice.dev/v2"'),
        ("apiVersion: sluice.dev/v1\nkind: Pipeline\n", 'unknown kind "Pipeline"'),
        ("- just\n- a list\n", "a manifest must be an object with apiVersion and kind"),
        (
            "apiVersion: sluice.dev/v1\nkind: Connection\nmetadata:\n  name: Bad_Name\nspec: {}\n",
            "metadata.name must be a lowercase DNS subdomain name",
        ),
        (
            "apiVersion: sluice.dev/v1\nkind: Connection\nmetadata:\n  name: a\n  name: b\n",
            'duplicate key "name"',
        ),
        (
            "apiVersion: sluice.dev/v1\nkind: Connection\nmetadata: {name: a}\nspec: {id: 1}\n",
            "spec.connector is required",
        ),
        (
            "apiVersion: sluice.dev/v1\nkind: Connection\nmetadata: {name: a}\nspec: []\n",
            "spec must be an object",
        ),
        (
            "apiVersion: sluice.dev/v1\nkind: Connection\nmetadata: {name: a}\nspc: {id: 1}\n",
            'unknown field "spc" (did you mean "spec"?)',
        ),
    ],
)
def test_bad_documents_get_a_clear_located_message(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out = run("validate", str(path))
    assert code == 1
    assert out.startswith(f"{path}:")
    assert message in out
    assert "Traceback" not in out


def test_documents_of_other_groups_are_passed_over(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: marketing}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {weird: true}\n"
    )
    assert run("validate", str(tmp_path)) == (0, "")


def test_a_resource_declared_twice_is_reported(repo: Path) -> None:
    # Even as an identical copy: an edit of one copy would silently lose to the other.
    shutil.copy(repo / "hubspot-connection.yaml", repo / "copy.yaml")
    code, out = run("validate", str(repo))
    assert code == 1
    assert f"{repo / 'hubspot-connection.yaml'}:" in out
    assert f"Connection/marketing/hubspot: declared twice: first in {repo / 'copy.yaml'}:" in out


def test_a_file_named_twice_is_read_once(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = repo / "seed-pipeline.yaml"
    again = repo / ".." / repo.name / pipeline.name
    assert run("validate", str(repo), str(pipeline), str(again)) == (0, "")
    assert capsys.readouterr().err == f"checked {len(MARKETING)} Sluice object(s): all valid\n"
    store = f"sqlite:///{tmp_path / 'store.db'}"
    code, out = run("apply", "-f", str(repo), "-f", str(pipeline), "--store", store)
    assert (code, out.count(" created")) == (0, len(MARKETING))


@pytest.mark.parametrize(
    ("written", "enabled"),
    [
        ("yes", True),
        ("On", True),
        ("y", True),
        ("Y", True),
        ("no", False),
        ("OFF", False),
        ("n", False),
    ],
)
def test_yaml_booleans_mean_what_kubectl_stores(repo: Path, written: str, enabled: bool) -> None:
    edit_yaml(repo / "seed-pipeline.yaml", "enabled: true", f"enabled: {written}")
    code, out = run("show", "-f", str(repo), "export-customers")
    assert (code, json.loads(out)["enabled"]) == (0, enabled)


def test_a_yaml_boolean_where_text_is_expected_asks_for_quotes(repo: Path) -> None:
    pipeline = repo / "seed-pipeline.yaml"
    edit_yaml(pipeline, "name: Export customers", "name: yes")
    assert_one_problem(
        [repo],
        pipeline,
        "name: yes",
        "ExportPipeline/marketing/export-customers",
        "spec.name must be a string: quote it "
        "(unquoted, yes, no, on, off, y, n, true and false are YAML booleans)",
    )


def as_list(*paths: Path) -> str:
    """The documents of the files as one List, as `kubectl get -o yaml` prints them."""
    items = [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}, sort_keys=False)


def test_a_list_is_validated_item_by_item(repo: Path, tmp_path: Path) -> None:
    pipeline = repo / "seed-pipeline.yaml"
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        pipeline.read_text()
        .replace("name: export-customers", "name: broken")
        .replace("exportMode: CreateOnly", "exportMode: Sometimes")
    )
    listed = tmp_path / "list.yaml"
    listed.write_text(
        as_list(repo / "workspace.yaml", repo / "hubspot-connection.yaml", pipeline, broken)
    )
    assert_one_problem(
        [listed],
        listed,
        "exportMode: Sometimes",
        "ExportPipeline/marketing/broken",
        'export mode "Sometimes" is not valid',
    )


def test_a_list_applies_as_its_files_do(repo: Path, tmp_path: Path) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text(as_list(*sorted(repo.glob("*.yaml"))))
    from_list = run("apply", "-f", str(listed), "--store", f"sqlite:///{tmp_path / 'a.db'}")
    from_files = run("apply", "-f", str(repo), "--store", f"sqlite:///{tmp_path / 'b.db'}")
    assert from_list == from_files
    assert from_list[0] == 0 and from_list[1].count(" created") == len(MARKETING)


def test_a_problem_inside_a_list_names_the_item(tmp_path: Path) -> None:
    path = tmp_path / "lists.yaml"
    path.write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: List\n  items:\n  - {kind: Workspace}\n"
    )
    assert run("validate", str(path)) == (
        1,
        f"{path}:7: items[0].items[0]: a manifest must have a string apiVersion and kind\n",
    )


def test_show_prints_the_api_body_of_a_pipeline() -> None:
    code, out = run("show", "-f", str(EXAMPLES), "-n", "marketing", "export-customers")
    assert code == 0
    body = json.loads(out)
    seed = yaml.safe_load((EXAMPLES / "seed-pipeline.yaml").read_text())["spec"]
    assert body["name"] == seed["name"] and body["connection"] == seed["connection"]
    assert body["filter"] == seed["filter"]
    assert (body["scheduleStart"], body["schedulePeriod"]) == (15, "1h")


def test_show_refuses_an_invalid_pipeline(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit_yaml(repo / "seed-pipeline.yaml", "exportMode: CreateOnly", "exportMode: Sometimes")
    code, out = run("show", "-f", str(repo), "export-customers")
    assert (code, out) == (1, "")
    assert 'export mode "Sometimes" is not valid' in capsys.readouterr().err


def test_the_console_script_exits_non_zero_on_problems(repo: Path) -> None:
    edit_yaml(repo / "seed-pipeline.yaml", "name: Export customers", 'name: ""')
    sluice = Path(sys.executable).parent / "sluice"
    result = subprocess.run(
        [str(sluice), "validate", str(repo)], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 1
    assert "name is empty" in result.stdout
    assert "1 problem(s)" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (
            ["api", "--store", "bogus://x"],
            "cannot open the store bogus://x: Can't load plugin: sqlalchemy.dialects:bogus",
        ),
        (
            ["apply", "-f", "{repo}", "--store", "sqlite:////nonexistent-folder/sluice.db"],
            "cannot open the store sqlite:////nonexistent-folder/sluice.db: "
            "unable to open database file",
        ),
        (
            [
                "apply",
                "-f",
                "{repo}",
                "--store",
                "postgresql://sluice:pw-kept-secret@127.0.0.1:1/x",
            ],
            "cannot open the store postgresql://sluice:***@127.0.0.1:1/x: connection failed: "
            'connection to server at "127.0.0.1", port 1 failed: Connection refused',
        ),
        (
            ["local", "{repo}", "--once", "--store", "bogus://x"],
            "cannot open the store bogus://x: Can't load plugin: sqlalchemy.dialects:bogus",
        ),
        (
            ["api", "--listen", "127.0.0.1:0"],
            "listen address '127.0.0.1:0': the port must be from 1 to 65535",
        ),
        (
            ["api", "--store", "sqlite:///{repo}/store.db", "--listen", "127.0.0.1:{busy}"],
            "cannot listen on 127.0.0.1:{busy}: address already in use",
        ),
        (
            [
                "local",
                "{repo}",
                "--store",
                "sqlite:///{repo}/store.db",
                "--listen",
                "127.0.0.1:{busy}",
            ],
            "cannot listen on 127.0.0.1:{busy}: address already in use",
        ),
        (
            ["operator", "--api-listen", "127.0.0.1:{busy}", "--store", "sqlite:///{repo}/s.db"],
            "cannot listen on 127.0.0.1:{busy}: address already in use",
        ),
        (
            ["operator", "--no-api", "--store", "sqlite:///{repo}/store.db"],
            "no Kubernetes cluster to talk to: not running in a pod, and no usable kubeconfig "
            "($KUBECONFIG or ~/.kube/config: Invalid kube-config file. No configuration found.)",
        ),
    ],
    ids=[
        "unknown-store",
        "sqlite-folder-missing",
        "store-down",
        "local",
        "port-0",
        "api-port-busy",
        "local-port-busy",
        "operator-port-busy",
        "no-cluster",
    ],
)
def test_bad_arguments_get_one_line_and_exit_1(
    repo: Path, tmp_path: Path, arguments: list[str], error: str
) -> None:
    sluice = Path(sys.executable).parent / "sluice"
    # No kubeconfig anywhere: the operator must say so.
    environment = {**os.environ, "KUBECONFIG": str(tmp_path / "none"), "HOME": str(tmp_path)}
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = str(busy.getsockname()[1])
        result = subprocess.run(
            [
                str(sluice),
                *(a.replace("{repo}", str(repo)).replace("{busy}", port) for a in arguments),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
            env=environment,
            timeout=60,
        )
    error = error.replace("{busy}", port)
    assert (result.returncode, result.stderr.splitlines()) == (1, [f"error: {error}"])
    assert "Traceback" not in result.stdout + result.stderr
    assert "pw-kept-secret" not in result.stdout + result.stderr


def test_a_name_in_two_namespaces_asks_for_one_and_says_which(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # examples/ holds the demo's export-customers beside the marketing one.
    assert run("show", "-f", str(EXAMPLES), "export-customers") == (1, "")
    assert capsys.readouterr().err == (
        "error: more than one ExportPipeline named 'export-customers' (demo/export-customers, "
        "marketing/export-customers): choose one with its name and --namespace\n"
    )
    code, out = run("show", "-f", str(EXAMPLES), "-n", "marketing", "export-customers")
    assert (code, json.loads(out)["name"]) == (0, "Export customers")
    profiles = str(EXAMPLES / "profiles.jsonl")
    code, out = run(
        "preview", "-f", str(EXAMPLES), "--profiles", profiles, "--pipeline", "export-customers"
    )
    assert (code, out) == (1, "")
    assert "choose one with its name and --namespace" in capsys.readouterr().err
    code, out = run(
        "preview",
        "-f",
        str(EXAMPLES),
        "--profiles",
        profiles,
        "-n",
        "demo",
        "--pipeline",
        "export-customers",
    )
    assert code == 0
    assert out.count("\n") == 5


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    sluice = Path(sys.executable).parent / "sluice"
    shown = f"{sluice} show -f {EXAMPLES} -n marketing export-customers"
    # `true` exits long before sluice has imported anything: its first write meets a closed
    # pipe (`head -1` could still be reading when sluice has written everything).
    result = subprocess.run(
        ["bash", "-c", f'{shown} | true; exit "${{PIPESTATUS[0]}}"'],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (1, "")
