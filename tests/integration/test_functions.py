"""Transformation functions through real exports: the shipped Python and JavaScript examples,
per-record failures, a source that cannot run, and escape attempts that must leak nothing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from sluice.engine.export import run_export
from tests.integration.conftest import TOKEN, Target
from tests.integration.test_export import WRITES, people, person, requests_to


def function(language: str, source: str, in_paths: list[str], out_paths: list[str]) -> Any:
    return {
        "mapping": None,
        "function": {
            "language": language,
            "source": source,
            "preserveJSON": False,
            "inPaths": in_paths,
            "outPaths": out_paths,
        },
    }


def test_the_python_example_exports_end_to_end(target: Target) -> None:
    profiles = people(120)
    profiles["p00003"] = person(3, first_name="  ada ", last_name="LOVELACE", loyalty_points=6000)
    target.load(profiles)
    config = target.config(example="stage-customers")

    summary = target.export(config)

    assert summary.outcome == "Succeeded", summary
    assert summary.counts["created"] == 120
    contacts = target.contacts()
    ada = contacts["user3@example.com"]["properties"]
    assert (ada["firstname"], ada["lastname"], ada["lifecyclestage"]) == (
        "Ada",
        "Lovelace",
        "evangelist",
    )
    assert contacts["user0@example.com"]["properties"]["lifecyclestage"] == "lead"
    assert contacts["user5@example.com"]["properties"]["lifecyclestage"] == "customer"

    # A rerun sends nothing; a change is an update, which leaves the stage as it is.
    writes = requests_to(target, WRITES)
    assert target.export(config).counts["unchanged"] == 120
    assert requests_to(target, WRITES) == writes
    profiles["p00003"] = person(3, first_name="ada", last_name="byron", loyalty_points=0)
    target.load(profiles)
    summary = target.export(config)
    assert summary.counts["updated"] == 1
    ada = target.contacts()["user3@example.com"]["properties"]
    assert (ada["lastname"], ada["lifecyclestage"]) == ("Byron", "evangelist")


def test_a_function_is_told_the_truth_about_users_already_in_the_app(target: Target) -> None:
    # Contacts made by another pipeline: the example's first run has no bookkeeping of them,
    # yet its function must be told it updates them (so it leaves their stage alone).
    target.load(people(30))
    assert target.export(target.config(filter=None)).counts["created"] == 30
    target.load(people(40))

    summary = target.export(target.config(example="stage-customers"))

    assert (summary.counts["created"], summary.counts["updated"]) == (10, 30)
    contacts = target.contacts()
    assert "lifecyclestage" not in contacts["user5@example.com"]["properties"]
    assert contacts["user35@example.com"]["properties"]["lifecyclestage"] == "customer"
    assert contacts["user5@example.com"]["properties"]["lastname"] == "Last5"


def test_the_javascript_example_exports_end_to_end(target: Target) -> None:
    target.load(people(120))
    config = target.config(example="region-customers")

    summary = target.export(config)

    assert summary.outcome == "Succeeded", summary
    assert summary.counts["created"] == 120
    contacts = target.contacts()
    even, odd = contacts["user4@example.com"], contacts["user7@example.com"]
    assert even["properties"]["lastname"] == "LAST4"
    assert even["properties"]["country"] == "US (Americas)"
    assert odd["properties"]["country"] == "GB (Europe)"
    assert odd["properties"]["city"] == "City0"
    assert target.export(config).counts["unchanged"] == 120


FAILING = {
    "Python": (
        "def transform(profile):\n"
        "    if profile['email'].endswith('7@example.com'):\n"
        "        raise ValueError('no sevens')\n"
        "    if profile['email'].endswith('8@example.com'):\n"
        "        return {'contact': {'nickname': 'x'}}\n"
        "    return {'contact': {'firstname': profile['first_name']}}\n",
        "Python: ValueError: no sevens",
    ),
    "JavaScript": (
        "function transform(profile) {\n"
        "  if (profile.email.endsWith('7@example.com')) throw new RangeError('no sevens');\n"
        "  if (profile.email.endsWith('8@example.com')) return {contact: {nickname: 'x'}};\n"
        "  return {contact: {firstname: profile.first_name}};\n"
        "}\n",
        "JavaScript: RangeError: no sevens",
    ),
}


@pytest.mark.parametrize("language", ["Python", "JavaScript"])
def test_a_failing_record_fails_alone_with_its_message(target: Target, language: str) -> None:
    target.load(people(40))
    source, message = FAILING[language]
    config = target.config(
        filter=None,
        transformation=function(language, source, ["email", "first_name"], ["contact.firstname"]),
    )

    summary = target.export(config)

    assert summary.outcome == "PartiallyFailed", summary
    assert summary.counts["transformationFailed"] == 4  # 7, 17, 27, 37
    assert summary.counts["outputValidationFailed"] == 4  # 8, 18, 28, 38
    assert summary.counts["created"] == 32
    by_step = {sample.step: sample.message for sample in summary.error_samples}
    assert by_step["Transformation"] == message
    assert by_step["OutputValidation"] == (
        "property «contact.nickname» is not part of output schema; rename or remove it in the "
        "transformation function"
    )
    errors = target.sql("SELECT profile_id, step, message FROM sluice_run_errors")
    assert sorted(row[0] for row in errors if row[1] == "Transformation") == [
        "p00007",
        "p00017",
        "p00027",
        "p00037",
    ]
    assert "user7@example.com" not in target.contacts()
    assert target.contacts()["user6@example.com"]["properties"]["firstname"] == "First6"


def test_a_source_that_fails_at_its_top_level_fails_the_run_before_anything_is_sent(
    target: Target,
) -> None:
    target.load(people(10))
    source = "raise RuntimeError('configuration missing')\ndef transform(profile):\n    return {}\n"
    config = target.config(
        transformation=function("Python", source, ["first_name"], ["contact.firstname"])
    )

    summary = target.export(config)

    assert summary.outcome == "Failed"
    assert summary.error == "Python: RuntimeError: configuration missing"
    assert requests_to(target, WRITES) == 0


ESCAPES = """
import os, socket, subprocess

def transform(profile):
    attempt = profile["first_name"]
    if attempt == "environment":
        return {"contact": {"firstname": os.environ["SLUICE_TEST_SECRET"]}}
    if attempt == "credentials":
        return {"contact": {"firstname": open(CREDENTIALS).read()}}
    if attempt == "passwd":
        return {"contact": {"firstname": open("/etc/passwd").read()[:50]}}
    if attempt == "parent":
        return {"contact": {"firstname": open(f"/proc/{os.getppid()}/environ").read()}}
    if attempt == "socket":
        socket.create_connection(("127.0.0.1", TWIN_PORT), timeout=1)
        return {"contact": {"firstname": "connected"}}
    if attempt == "system":
        status = os.system(f"echo {TOKEN} > /tmp/escaped")
        raise OSError(f"the shell ran with status {status}")
    if attempt == "subprocess":
        return {"contact": {"firstname": subprocess.check_output(["cat", CREDENTIALS]).decode()}}
    if attempt == "fork":
        return {"contact": {"firstname": str(os.fork())}}
    if attempt == "write":
        open(os.path.join(os.path.dirname(CREDENTIALS), "written"), "w").write("x")
        return {"contact": {"firstname": "wrote"}}
    if attempt == "loop":
        while True:
            pass
    if attempt == "memory":
        return {"contact": {"firstname": "x" * (1 << 30)}}
    if attempt == "huge":
        return {"contact": {"firstname": "y" * (4 << 20)}}
    if attempt == "print":
        for _ in range(100_000):
            print(os.environ.get("SLUICE_TEST_SECRET", "nothing"), "x" * 100)
        raise ValueError("printed a lot")
    return {"contact": {"firstname": attempt}}
"""

EXPECTED = {
    "environment": "Python: KeyError: 'SLUICE_TEST_SECRET'",
    "credentials": "Python: PermissionError: [Errno 13] Permission denied: ",
    "passwd": "Python: PermissionError: [Errno 13] Permission denied: '/etc/passwd'",
    "parent": "Python: PermissionError: [Errno 13] Permission denied: '/proc/",
    "socket": "Python: PermissionError: [Errno 1] Operation not permitted",
    "system": "Python: OSError: the shell ran with status ",
    "subprocess": "Python: PermissionError: [Errno 1] Operation not permitted",
    "fork": "Python: PermissionError: [Errno 1] Operation not permitted",
    "write": "Python: PermissionError: [Errno 13] Permission denied: ",
    "loop": "Python: timed out after 1 s",
    "memory": "Python: ran out of memory (its worker is limited to 128 MiB)",
    "huge": "Python: the returned value is larger than 1024 KiB",
    "print": 'Python: ValueError: printed a lot (it printed: "nothing xxxx',
}


def test_escape_attempts_fail_their_profile_and_leak_nothing(
    target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-do-not-leak-7d1f"
    credentials = tmp_path / "credentials" / "accessToken"
    credentials.parent.mkdir()
    credentials.write_text(secret)
    monkeypatch.setenv("SLUICE_TEST_SECRET", secret)
    monkeypatch.setenv("SLUICE_FUNCTION_TIMEOUT", "1")
    monkeypatch.setenv("SLUICE_FUNCTION_MEMORY", "128")
    attempts = [*EXPECTED, "plain"]
    target.load({f"p{i:05d}": person(i, first_name=a) for i, a in enumerate(attempts)})
    port = int(target.base_url.rsplit(":", 1)[1].split("/")[0])
    source = (
        f"CREDENTIALS = {str(credentials)!r}\nTWIN_PORT = {port}\nTOKEN = {TOKEN!r}\n" + ESCAPES
    )
    config = target.config(
        filter=None,
        transformation=function("Python", source, ["first_name"], ["contact.firstname"]),
    )
    out, err = io.StringIO(), io.StringIO()

    summary = run_export(config, full=False, out=out, err=err)

    assert summary.counts["created"] == 1
    assert target.contacts()["user13@example.com"]["properties"]["firstname"] == "plain"
    failures = dict(
        target.sql(
            "SELECT p.first_name, e.message FROM sluice_run_errors e "
            "JOIN profiles p ON p._kpid = e.profile_id"
        )
    )
    for attempt, message in EXPECTED.items():
        assert failures[attempt].startswith(message), (attempt, failures[attempt])
    everything = out.getvalue() + err.getvalue() + repr(summary) + repr(target.twin.contacts())
    everything += repr(target.sql("SELECT * FROM sluice_run_errors"))
    assert secret not in everything
    assert TOKEN not in repr(failures)
    assert not (credentials.parent / "written").exists()
    assert not Path("/tmp/escaped").exists()
