"""How fast transformation functions turn profiles into records, against the compiled mapping
of the same records and against Krenalis's model of running them.

100,000 synthetic profiles (seeded; the workspace example's schema: first_name, last_name,
email, loyalty_points, address.city/country) become one record each, a ``contact`` of six
nullable strings: the first name trimmed and title-cased, the last name upper-cased, the email
trimmed and lower-cased, the city or "Unknown", "domestic" or "international" by country, the
points as text. The record is written three ways, checked to give equal records on a sample
first and on every profile afterwards:

* the compiled mapping (``initcap(trim(first_name))``, ``coalesce(address.city, "Unknown")``,
  ``if(eq(address.country, "US"), …)``…), ``CompiledMapping.transform`` per profile;
* a 10-line Python function and a 10-line JavaScript function, through
  ``FunctionTransformer``: persistent sandboxed workers, one per CPU, batches of 100 over
  pipes. Timed from ``start()`` to ``close()``, over chunks of 2,000 profiles as the export
  engine sends them, so the workers' start is paid inside the figure;
* Krenalis's model, rebuilt here: a new interpreter process per 100 records (this Python with
  ``-I``, or ``node`` where it is installed), empty environment, the wrapper and the function's
  source on stdin, the batch as JSON on the command line, results on stdout delimited by a
  boundary; the same input encoding and output checking as the functions, so that only the
  process model differs. Measured on the first 10,000 profiles (100 processes) with one process
  at a time and with as many as the functions have workers; the faster counts (interpreters
  starting at once can be slower than one after the other on few cores).

The 100,000 profiles are kept out of the garbage collector's way (``gc.freeze``), as the engine
holds only a chunk of them at a time. Times are the best of two alternating rounds.

Memory: each language runs again in a fresh process of this script (``--memory LANGUAGE N``)
for 10,000 and for 100,000 profiles, generated and dropped chunk by chunk as the engine does;
it reports the parent's peak RSS (VmHWM) growth over its RSS before the workers start, and
the workers' peak RSS, summed (their VmHWM, read just before ``close()``).

Targets: each function ≥ 20 × Krenalis's model of its language (profiles per second), and
≤ 3 × the compiled mapping's time; memory flat from 10,000 to 100,000 profiles, meaning that
at 100,000 the parent's peak RSS growth and the workers' peak RSS are each at most 1.05 × their
10,000 figure + 4 MiB (a leak of 200 bytes per profile, 17 MiB over the 90,000 more, would show
in any of them). Exits 1 when a target is missed.

    .venv/bin/python benchmarks/bench_functions.py
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import secrets
import shutil
import string
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))

from sluice.functions.pool import BATCH_SIZE
from sluice.functions.transformer import (
    FunctionSettings,
    FunctionTransformer,
    installed_languages,
)
from sluice.functions.values import InputEncoder, OutputChecker
from sluice.mapping import Purpose, RecordError, Step, TimeLayouts, compile_mapping
from sluice.model.types import Type, parse_type
from targets import verdict

PROFILES = 100_000
KRENALIS_PROFILES = 10_000
#: The export engine's chunk: rows per warehouse fetch, transformed together.
CHUNK = 2_000
CHECKED_SAMPLE = 2_000
KRENALIS_CHECKED = 200
ROUNDS = 2
MEMORY_SIZES = (10_000, 100_000)
TARGET_VS_KRENALIS = 20.0
TARGET_VS_MAPPING = 3.0
FLAT_RATIO, FLAT_MIB = 1.05, 4.0
SEED = 20260821

Profile = dict[str, Any]
Outcome = dict[str, object] | RecordError

# ---------------------------------------------------------------------------------------------
# The schemas, the data and the three ways of writing the record
# ---------------------------------------------------------------------------------------------


def _optional(name: str, t: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "type": t, "readOptional": True}


IN_SCHEMA: Type = parse_type(
    {
        "kind": "object",
        "properties": [
            _optional("first_name", {"kind": "string", "maxLength": 100}),
            _optional("last_name", {"kind": "string", "maxLength": 100}),
            _optional("email", {"kind": "string", "maxLength": 254}),
            _optional("loyalty_points", {"kind": "int", "bitSize": 32}),
            _optional(
                "address",
                {
                    "kind": "object",
                    "properties": [
                        _optional("city", {"kind": "string", "maxLength": 100}),
                        _optional("country", {"kind": "string", "maxLength": 2}),
                    ],
                },
            ),
        ],
    }
)
CONTACT = ("firstname", "lastname", "email", "city", "region", "points")
OUT_SCHEMA: Type = parse_type(
    {
        "kind": "object",
        "properties": [
            {
                "name": "contact",
                "type": {
                    "kind": "object",
                    "properties": [
                        {"name": name, "type": {"kind": "string"}, "nullable": True}
                        for name in CONTACT
                    ],
                },
            }
        ],
    }
)
IN_PATHS = ("first_name", "last_name", "email", "loyalty_points", "address")
OUT_PATHS = ("contact",)

MAPPING = {
    "contact.firstname": "initcap(trim(first_name))",
    "contact.lastname": "upper(last_name)",
    "contact.email": "lower(trim(email))",
    "contact.city": 'coalesce(address.city, "Unknown")',
    "contact.region": 'if(eq(address.country, "US"), "domestic", "international")',
    "contact.points": "loyalty_points",
}

PYTHON_SOURCE = """\
def transform(profile):
    first, last, email = profile.get("first_name"), profile.get("last_name"), profile.get("email")
    points, address = profile.get("loyalty_points"), profile.get("address") or {}
    return {"contact": {
        "firstname": None if first is None else first.strip().title(),
        "lastname": None if last is None else last.upper(),
        "email": None if email is None else email.strip().lower(),
        "city": address.get("city", "Unknown"),
        "region": "domestic" if address.get("country") == "US" else "international",
        "points": None if points is None else str(points),
    }}
"""

JAVASCRIPT_SOURCE = """\
function transform(profile) {
  const { first_name: first, last_name: last, email, loyalty_points: points } = profile;
  const address = profile.address ?? {};
  const title = (s) => s.toLowerCase().replace(/\\b\\w/g, (c) => c.toUpperCase());
  return { contact: {
    firstname: first == null ? null : title(first.trim()),
    lastname: last == null ? null : last.toUpperCase(),
    email: email == null ? null : email.trim().toLowerCase(),
    city: address.city ?? "Unknown",
    region: address.country === "US" ? "domestic" : "international",
    points: points == null ? null : String(points),
  } };
}
"""

SOURCES = {"Python": PYTHON_SOURCE, "JavaScript": JAVASCRIPT_SOURCE}


def _word(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choices(string.ascii_letters, k=rng.randint(low, high)))


def profiles(count: int, seed: int = SEED) -> Iterator[Profile]:
    """``count`` profiles, the same ones for the same seed: mixed case, stray blanks, about
    one value in ten absent."""
    rng = random.Random(seed)
    for _ in range(count):
        profile: Profile = {}
        if rng.random() < 0.95:
            name = _word(rng, 3, 10) + (" " + _word(rng, 3, 8) if rng.random() < 0.2 else "")
            profile["first_name"] = " " * rng.randint(0, 2) + name + " " * rng.randint(0, 2)
        if rng.random() < 0.9:
            profile["last_name"] = _word(rng, 3, 12)
        if rng.random() < 0.97:
            profile["email"] = f" {_word(rng, 5, 12)}@{_word(rng, 4, 8)}.Example.com "
        if rng.random() < 0.8:
            profile["loyalty_points"] = rng.randint(0, 50_000)
        if rng.random() < 0.85:
            address: Profile = {}
            if rng.random() < 0.9:
                address["city"] = _word(rng, 4, 12).title()
            if rng.random() < 0.9:
                address["country"] = rng.choice(["US", "US", "IT", "FR", "DE"])
            profile["address"] = address
        yield profile


def chunks(items: Sequence[Profile], size: int = CHUNK) -> Iterator[Sequence[Profile]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------------------------------------------------------------------------------------------
# Measuring the mapping, the functions and Krenalis's model
# ---------------------------------------------------------------------------------------------


def run_mapping(data: Sequence[Profile]) -> tuple[float, list[Outcome]]:
    compiled = compile_mapping(MAPPING, IN_SCHEMA, OUT_SCHEMA, time_layouts=TimeLayouts())
    transform, purpose = compiled.transform, Purpose.CREATE
    results: list[Outcome] = []
    started = time.perf_counter()
    for chunk in chunks(data):
        for profile in chunk:
            try:
                results.append(transform(profile, purpose))
            except RecordError as err:
                results.append(err)
    return time.perf_counter() - started, results


def transformer(language: str) -> FunctionTransformer:
    return FunctionTransformer(
        language=language,
        source=SOURCES[language],
        preserve_json=False,
        in_paths=IN_PATHS,
        out_paths=OUT_PATHS,
        in_schema=IN_SCHEMA,
        out_schema=OUT_SCHEMA,
        time_layouts=TimeLayouts(),
        settings=FunctionSettings.from_environment(),
    )


def run_function(language: str, data: Sequence[Profile]) -> tuple[float, list[Outcome]]:
    function = transformer(language)
    results: list[Outcome] = []
    started = time.perf_counter()
    function.start()
    try:
        for chunk in chunks(data):
            results.extend(function.transform([(profile, Purpose.CREATE) for profile in chunk]))
    finally:
        function.close()
    return time.perf_counter() - started, results


_PYTHON_WRAPPER = """
import json as _json, sys as _sys
_write = _sys.stdout.write
for _purpose, _record in _json.loads(_sys.argv[1]):
    try:
        _write(BOUNDARY + "0" + _json.dumps(transform(_record)) + "\\n")
    except Exception as _err:
        _write(BOUNDARY + "1" + type(_err).__name__ + ": " + str(_err) + "\\n")
"""

_NODE_WRAPPER = """
for (const [purpose, record] of JSON.parse(process.argv[2])) {
  try {
    process.stdout.write(BOUNDARY + "0" + JSON.stringify(transform(record, purpose)) + "\\n");
  } catch (error) {
    process.stdout.write(BOUNDARY + "1" + String(error) + "\\n");
  }
}
"""


@dataclass(frozen=True)
class Krenalis:
    """Krenalis's model: one new interpreter process per batch of 100 records."""

    language: str
    command: tuple[str, ...]

    @classmethod
    def of(cls, language: str) -> Krenalis | None:
        if language == "Python":
            return cls(language, (sys.executable, "-I", "-"))
        node = shutil.which("node")
        return None if node is None else cls(language, (node, "-"))

    def run(self, data: Sequence[Profile], at_a_time: int = 1) -> tuple[float, list[Outcome]]:
        """Seconds to turn ``data`` into records, ``at_a_time`` processes running at once."""
        encoder = InputEncoder(IN_SCHEMA, IN_PATHS, self.language, False)
        checker = OutputChecker(OUT_SCHEMA, OUT_PATHS, self.language, False, TimeLayouts())
        boundary = f"--sluice-{secrets.token_hex(16)}--"
        wrapper = _PYTHON_WRAPPER if self.language == "Python" else _NODE_WRAPPER
        script = (SOURCES[self.language] + wrapper).replace("BOUNDARY", json.dumps(boundary))

        def batch(profiles: Sequence[Profile]) -> list[Outcome]:
            payload = json.dumps(
                [[Purpose.CREATE.value, encoder.encode(profile)] for profile in profiles],
                ensure_ascii=False,
            )
            done = subprocess.run(
                [*self.command, payload],
                input=script.encode(),
                capture_output=True,
                env={},
                check=True,
            )
            pieces = done.stdout.decode().split(boundary)[1:]
            if len(pieces) != len(profiles):
                raise AssertionError(f"{self.language}: {len(pieces)} results for {len(profiles)}")
            results: list[Outcome] = []
            for piece in pieces:
                text = piece.rstrip("\n")
                if text[:1] != "0":
                    results.append(RecordError(Step.TRANSFORMATION, text[1:], ""))
                    continue
                try:
                    results.append(checker.check(json.loads(text[1:]), Purpose.CREATE))
                except RecordError as err:
                    results.append(err)
            return results

        results: list[Outcome] = []
        started = time.perf_counter()
        with ThreadPoolExecutor(at_a_time) as executor:
            for outcome in executor.map(batch, list(chunks(data, BATCH_SIZE))):
                results.extend(outcome)
        return time.perf_counter() - started, results


# ---------------------------------------------------------------------------------------------
# Memory, in a fresh process per language and size
# ---------------------------------------------------------------------------------------------


def _status(pid: int | str) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _kib(status: dict[str, str], field: str) -> int:
    return int(status.get(field, "0 kB").split()[0])


def _workers_peak_kib() -> tuple[int, int]:
    """(workers, their VmHWM summed): this process's children are the pool's workers."""
    me, count, total = str(os.getpid()), 0, 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = _status(entry.name)
        except OSError:
            continue  # gone, or not ours to read
        if status.get("PPid", "").strip() == me:
            count, total = count + 1, total + _kib(status, "VmHWM")
    return count, total


def measure_memory(language: str, count: int) -> dict[str, float]:
    """Run ``count`` profiles through the language's function, in chunks generated and dropped
    as they go; the parent's peak RSS growth and the workers' summed peak RSS, in MiB."""
    function = transformer(language)
    before = _kib(_status("self"), "VmRSS")
    function.start()
    try:
        batch: list[tuple[Profile, Purpose]] = []
        for profile in profiles(count):
            batch.append((profile, Purpose.CREATE))
            if len(batch) == CHUNK:
                function.transform(batch)
                batch = []
        if batch:
            function.transform(batch)
        workers, workers_kib = _workers_peak_kib()
    finally:
        function.close()
    parent_kib = _kib(_status("self"), "VmHWM") - before
    return {"parent": parent_kib / 1024, "workers": workers_kib / 1024, "count": workers}


def memory_in_fresh_process(language: str, count: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--memory", language, str(count)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the memory measurement of {language} failed:\n{done.stderr}")
    measured: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return measured


# ---------------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------------


def check_same(label: str, expected: Sequence[Outcome], got: Sequence[Outcome]) -> None:
    if len(expected) != len(got):
        raise SystemExit(f"{label}: {len(got)} records, not {len(expected)}")
    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        if isinstance(want, RecordError) or isinstance(have, RecordError) or want != have:
            raise SystemExit(f"{label}: profile {index}: {have!r}, not {want!r}")


@dataclass
class Speeds:
    """Best seconds per way of writing the record, and Krenalis's model's (seconds, processes
    at a time) per language."""

    mapping: float = math.inf
    functions: dict[str, float] = field(default_factory=dict)
    krenalis: dict[str, tuple[float, int]] = field(default_factory=dict)


def measure_speeds(languages: Sequence[str], workers: int) -> Speeds:
    data = list(profiles(PROFILES))
    # The engine holds one chunk of profiles at a time, not 100,000: keep these out of the
    # garbage collector's way, as they would be.
    gc.collect()
    gc.freeze()
    models = {language: Krenalis.of(language) for language in languages}

    # Equal records from every way of writing them, on a sample, before anything is timed.
    expected = run_mapping(data[:CHECKED_SAMPLE])[1]
    for language in languages:
        sample = run_function(language, data[:CHECKED_SAMPLE])[1]
        check_same(f"{language} function", expected, sample)
        if (model := models[language]) is not None:
            sample = model.run(data[:KRENALIS_CHECKED])[1]
            check_same(f"Krenalis {language}", expected[:KRENALIS_CHECKED], sample)

    speeds = Speeds()
    for _ in range(ROUNDS):  # best of alternating rounds: the least disturbed of each
        seconds, expected = run_mapping(data)
        speeds.mapping = min(speeds.mapping, seconds)
        for language in languages:
            seconds, results = run_function(language, data)
            check_same(f"{language} function", expected, results)
            speeds.functions[language] = min(speeds.functions.get(language, math.inf), seconds)
    subset = data[:KRENALIS_PROFILES]
    for language in languages:
        if (model := models[language]) is None:
            continue
        for at_a_time in sorted({1, workers}):  # whichever suits the model better
            seconds, results = model.run(subset, at_a_time)
            check_same(f"Krenalis {language}", expected[:KRENALIS_PROFILES], results)
            if seconds < speeds.krenalis.get(language, (math.inf, 0))[0]:
                speeds.krenalis[language] = (seconds, at_a_time)
    return speeds


def report_speeds(speeds: Speeds, workers: int) -> list[str]:
    """Print the speed table; return the targets missed."""
    print(f"{PROFILES:,} profiles, {workers} worker(s) per function; Krenalis's model on the")
    print(f"first {KRENALIS_PROFILES:,}, 1 or {workers} process(es) at a time, whichever is faster")
    print(f"{'':<38}{'profiles/s':>12}{'seconds':>9}{'×mapping':>10}{'×Krenalis':>11}")
    print(f"{'compiled mapping':<38}{PROFILES / speeds.mapping:>12,.0f}{speeds.mapping:>9.2f}")
    missed = []
    for language, seconds in speeds.functions.items():
        rate, slower = PROFILES / seconds, seconds / speeds.mapping
        krenalis = speeds.krenalis.get(language)
        faster = None if krenalis is None else rate * krenalis[0] / KRENALIS_PROFILES
        shown = "" if faster is None else f"{faster:>10.1f}×"
        label = f"{language} function"
        print(f"{label:<38}{rate:>12,.0f}{seconds:>9.2f}{slower:>9.2f}×{shown}")
        if slower > TARGET_VS_MAPPING:
            missed.append(f"{label}: {slower:.2f} × the mapping's time")
        if faster is not None and faster < TARGET_VS_KRENALIS:
            missed.append(f"{label}: {faster:.1f} × Krenalis's rate")
    for language, (seconds, at_a_time) in speeds.krenalis.items():
        label = f"Krenalis {language}, {at_a_time} at a time"
        print(f"{label:<38}{KRENALIS_PROFILES / seconds:>12,.0f}{seconds:>9.2f}")
    print(
        f"targets: a function's time ≤ {TARGET_VS_MAPPING:g} × the mapping's, "
        f"its rate ≥ {TARGET_VS_KRENALIS:g} × Krenalis's model's"
    )
    return missed


def report_memory(languages: Sequence[str]) -> list[str]:
    """Measure and print the memory table; return the targets missed."""
    small_size, large_size = MEMORY_SIZES
    print(f"\n{'peak memory, MiB':<38}{small_size:>12,}{large_size:>12,}")
    missed = []
    for language in languages:
        small = memory_in_fresh_process(language, small_size)
        large = memory_in_fresh_process(language, large_size)
        for key, what in (("parent", "parent's RSS growth"), ("workers", "workers' RSS")):
            label = f"{language}: {what}"
            if key == "workers":
                label += f" ({large['count']:.0f})"
            print(f"{label:<38}{small[key]:>12.1f}{large[key]:>12.1f}")
            if large[key] > small[key] * FLAT_RATIO + FLAT_MIB:
                missed.append(
                    f"{label}: {large[key]:.1f} MiB at {large_size:,} profiles, "
                    f"{small[key]:.1f} MiB at {small_size:,}"
                )
    print(f"target: flat, ≤ {FLAT_RATIO:g} × the {small_size:,} figure + {FLAT_MIB:g} MiB")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", nargs=2, metavar=("LANGUAGE", "PROFILES"))
    args = parser.parse_args()
    if args.memory:
        print(json.dumps(measure_memory(args.memory[0], int(args.memory[1]))))
        return 0

    installed = installed_languages()
    languages = [name for name in SOURCES if name in installed]
    skipped = [
        f"the {name} function: no runtime installed" for name in SOURCES if name not in installed
    ]
    if "JavaScript" in languages and Krenalis.of("JavaScript") is None:
        skipped.append("Krenalis's model in JavaScript: no node on this machine")
    workers = FunctionSettings.from_environment().workers
    missed = report_speeds(measure_speeds(languages, workers), workers)
    missed += report_memory(languages)
    for reason in skipped:
        print(f"skipped: {reason}")
    return verdict(missed, "every function within its speed and memory targets")


if __name__ == "__main__":
    sys.exit(main())
