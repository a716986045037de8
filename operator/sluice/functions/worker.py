"""A transformation function's worker process: ``python -I -m sluice.functions.worker IN OUT
PROGRESS``, started by :mod:`sluice.functions.pool` with an empty environment.

It loads its runtime, confines itself (:mod:`sluice.functions.sandbox`), then runs the user's
source and transforms the batches it is sent, one after the other, until its input closes.

The channel is three descriptors the parent passes, never stdin/stdout (a function's
``print`` or ``console.log`` is captured, and a raw write to descriptor 1 goes to
``/dev/null``). Frames are a 4-byte little-endian length and a payload: the parent sends pickle
(the worker trusts its parent), the worker answers JSON (the parent does not trust the worker).
PROGRESS is a shared 4-byte counter: the index of the record being transformed, which tells the
parent which record to blame when it has to kill the worker.

Answers: ``{"ready": true, "purpose": bool}`` once the source has run (whether ``transform``
takes the purpose as its second argument), ``{"fatal": message}`` when it cannot
(then the worker exits), and per batch ``{"results": [...]}``, one ``[0, json_text]``,
``[1, message]`` (the function failed) or ``[2, message]`` (it hit a limit) per record, in
order; fewer results than records when the worker must be replaced first (``"exit": true``).
"""

from __future__ import annotations

import inspect
import io
import json
import math
import mmap
import os
import pickle
import struct
import sys
import sysconfig
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from sluice.functions import javascript, sandbox
from sluice.functions.javascript import SourceUnusableError

_LENGTH = struct.Struct("<I")
#: What a function may print per record, kept for its error message.
PRINT_SAMPLE = 200


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> Any:
    header = _read_exactly(fd, 4)
    if header is None:
        return None
    body = _read_exactly(fd, _LENGTH.unpack(header)[0])
    return None if body is None else pickle.loads(body)


def _send(fd: int, message: dict[str, Any] | str | bytes) -> None:
    """An answer: a dict, or its JSON already made (a batch's, records embedded)."""
    if isinstance(message, dict):
        message = json.dumps(message, ensure_ascii=False)
    body = message if isinstance(message, bytes) else message.encode("utf-8", "surrogatepass")
    view = memoryview(_LENGTH.pack(len(body)) + body)
    while view:
        view = view[os.write(fd, view) :]


def _readable_folders() -> set[str]:
    """Where the interpreter loads code from: its libraries, site-packages (Sluice and the
    JavaScript runtime among them), the system's library folders and those of the shared
    libraries already mapped."""
    paths = sysconfig.get_paths()
    folders = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    folders.update(os.path.dirname(path) for path in sys.path if path.endswith(".zip"))
    folders.add("/dev/urandom")  # V8 seeds its random numbers from it
    library = sysconfig.get_config_var("LIBDIR")
    if library:
        folders.add(library)
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:  # where the C libraries of extension modules are (libcrypto, libffi...)
        folders.update({f"/lib/{multiarch}", f"/usr/lib/{multiarch}"})
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                path = fields[5].strip() if len(fields) == 6 else ""
                if path.startswith("/") and ".so" in path:
                    folders.add(os.path.dirname(path))
    except OSError:
        pass  # no /proc (a chroot): the library folders above are what there is
    return folders


class _Printed(io.TextIOBase):
    """``sys.stdout`` and ``sys.stderr`` of the function: the first characters of each
    record's output are kept, the rest counted and dropped."""

    def __init__(self) -> None:
        self.sample: list[str] = []
        self.kept = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.kept < PRINT_SAMPLE:
            piece = str(text)[: PRINT_SAMPLE - self.kept]
            self.sample.append(piece)
            self.kept += len(piece)
        return len(text)

    def take(self) -> str:
        text = "".join(self.sample).strip()
        self.sample, self.kept = [], 0
        return text


def _with_output(message: str, printed: str) -> str:
    shown = json.dumps(printed, ensure_ascii=False)
    return f"{message} (it printed: {shown})" if printed else message


def _python_json(value: object) -> object:
    """Values a Python function may return besides JSON's own, as §5.1 of the API has them."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return str(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _finite(value: object) -> object:
    """NaN and the infinities as the strings the API has for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


class _PythonRunner:
    def __init__(self, source: str, limit: int, memory_mib: int) -> None:
        self.limit = limit
        self.memory_mib = memory_mib
        self.printed = _Printed()
        sys.stdout = sys.stderr = self.printed
        namespace: dict[str, Any] = {"__name__": "transformation"}
        exec(compile(source, "transformation.py", "exec"), namespace)
        transform = namespace.get("transform")
        if not callable(transform):
            raise SourceUnusableError("Function 'transform' is not defined")
        self.transform = transform
        self.uses_purpose = _takes_two(transform)

    def run(self, batch: list[tuple[str, dict[str, Any]]], progress: mmap.mmap) -> bytes:
        parts = []
        for index, (purpose, record) in enumerate(batch):
            _LENGTH.pack_into(progress, 0, index)
            parts.append(self._one(purpose, record))
        return b'{"results":[' + b",".join(parts) + b"]}"

    def _one(self, purpose: str, record: dict[str, Any]) -> bytes:
        """``[0,<the value's JSON>]``, or ``[1,"<why it failed>"]`` (``2`` for a limit)."""
        try:
            arguments = (record, purpose) if self.uses_purpose else (record,)
            value = self.transform(*arguments)
            if not isinstance(value, dict):
                raise TypeError(f"transform returned {type(value).__name__}, not a dict")
            text = _encoded(value)
        except MemoryError:
            self.printed.take()
            limit = self.memory_mib
            return _failure(2, f"Python: ran out of memory (its worker is limited to {limit} MiB)")
        except Exception as err:  # the user's exception fails its record only
            message = f"Python: {type(err).__name__}: {err}"
            return _failure(1, _with_output(message, self.printed.take()))
        if self.printed.kept:
            self.printed.take()
        if len(text) > self.limit:
            return _failure(1, f"Python: the returned value is larger than {self.limit >> 10} KiB")
        return b"[0," + text + b"]"


def _encoded(value: dict[str, Any]) -> bytes:
    """The JSON of what a function returned: by orjson, a sixth of the standard library's
    time, which writes NaN and the infinities as null (hence the second look when a null is
    there) and refuses integers beyond 64 bits and lone surrogates (the standard library then
    writes them)."""
    try:
        text = orjson.dumps(value, default=_python_json)
    except TypeError:
        return json.dumps(_finite(value), default=_python_json, ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )
    if b"null" in text and _has_non_finite(value):
        text = orjson.dumps(_finite(value), default=_python_json)
    return text


def _has_non_finite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(item) for item in value)
    return False


def _failure(kind: int, message: str) -> bytes:
    return b"[%d," % kind + json.dumps(message).encode() + b"]"  # ASCII: \u escapes


def _takes_two(function: Callable[..., object]) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


def _main(request_fd: int, result_fd: int, progress_fd: int) -> int:
    progress = mmap.mmap(progress_fd, 4)
    setup = _receive(request_fd)
    if setup is None:
        return 0
    language = setup["language"]
    runtime = javascript.load() if language == "JavaScript" else None
    os.environ.clear()  # empty already, but for what the interpreter itself set (LC_CTYPE)
    try:
        if setup["sandbox"]:
            sandbox.confine(
                _readable_folders(), sandbox.Limits(address_space=setup.get("address_space"))
            )
    except OSError as err:
        _send(result_fd, {"fatal": f"the function sandbox cannot be set up: {err}"})
        return 1
    try:
        if runtime is not None:
            runner: Any = javascript.Runner(runtime, setup)
        else:
            runner = _PythonRunner(setup["source"], setup["record_limit"], setup["heap"] >> 20)
    except SourceUnusableError as err:
        _send(result_fd, {"fatal": str(err)})
        return 1
    except Exception as err:  # the source's own top-level failure
        _send(result_fd, {"fatal": f"{language}: {type(err).__name__}: {err}"})
        return 1
    _send(result_fd, {"ready": True, "purpose": runner.uses_purpose})
    while (batch := _receive(request_fd)) is not None:
        _send(result_fd, runner.run(batch, progress))
    return 0


if __name__ == "__main__":
    sys.exit(_main(*(int(arg) for arg in sys.argv[1:4])))
