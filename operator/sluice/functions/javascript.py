"""JavaScript functions: V8 through mini-racer, which ships V8 in its wheel (no Node.js).

A worker holds one V8 isolate with the user's source evaluated once; a batch is one call into
V8, with the records as JSON text in and the results as JSON text out, so that a record costs
no crossing between Python and V8. int(64) values arrive as BigInt (§5.1 of the API); the
results turn BigInt into strings, NaN and the infinities into ``"NaN"``, ``"Infinity"`` and
``"-Infinity"``, and drop ``undefined``. The isolate's heap is limited, and a batch running
past its time is interrupted by V8 itself; the record it was on fails, the others go on.

Bare V8 has no file, network, process or environment API at all; the worker's sandbox is what
stands behind it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import mmap
import re
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

_LENGTH = struct.Struct("<I")


class SourceUnusableError(Exception):
    """The source ran but cannot serve (no ``transform``): the run fails with this message."""


#: Batches between two full collections of a worker's V8 heap.
_COLLECT_EVERY = 25

#: Evaluated once per isolate, after the user's source.
_PRELUDE = r"""
var __sluice = (function () {
  "use strict";
  const MARK = "\u0000";
  const TOO_LARGE = `the returned value is larger than ${LIMIT_RECORD >> 10} KiB`;
  const printed = [];
  let kept = 0;
  const print = (...parts) => {
    if (kept >= LIMIT_PRINT) return;
    const text = parts.map(String).join(" ").slice(0, LIMIT_PRINT - kept);
    printed.push(text);
    kept += text.length;
  };
  globalThis.console = { log: print, info: print, warn: print, error: print, debug: print };
  const take = () => {
    const text = printed.join("\n").trim();
    printed.length = 0;
    kept = 0;
    return text;
  };
  const revive = (key, value) => {
    if (typeof value === "string" && value.charCodeAt(0) === 0) {
      const text = value.slice(2);
      return value[1] === "n" ? BigInt(text) : value[1] === "f" ? Number(text) : text;
    }
    return value;
  };
  // A BigInt is written as its digits (which int(64) properties take back).
  Object.defineProperty(BigInt.prototype, "toJSON", {
    value: function () { return this.toString(); }, configurable: true, writable: true,
  });
  const replace = (key, value) => {
    if (typeof value === "bigint") return value.toString();
    if (typeof value === "number" && !Number.isFinite(value)) return String(value);
    return value;
  };
  const describe = (error) => {
    if (error instanceof Error) return `${error.name}: ${error.message}`;
    return `Error: ${String(error)}`;
  };
  let records = [], done = [];
  const run = (text, encoded) => {
    records = JSON.parse(text, encoded ? revive : undefined);
    done = [];
    return resume();
  };
  const resume = () => {
    const fn = globalThis.transform;
    for (let i = done.length; i < records.length; i++) {
      const [purpose, record] = records[i];
      try {
        const value = fn(record, purpose);
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          const what = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
          throw new TypeError(`transform returned ${what}, not an object`);
        }
        let json = JSON.stringify(value);  // BigInt has a toJSON below
        if (json.includes("null")) json = JSON.stringify(value, replace);  // NaN or Infinity?
        take();
        done.push(json.length > LIMIT_RECORD
          ? `[1,${JSON.stringify(`JavaScript: ${TOO_LARGE}`)}]`
          : `[0,${json}]`);
      } catch (error) {
        const out = take();
        const printedPart = out ? ` (it printed: ${JSON.stringify(out)})` : "";
        const message = "JavaScript: " + describe(error) + printedPart;
        done.push(`[1,${JSON.stringify(message)}]`);
      }
    }
    return finished();
  };
  const finished = () => `[${done.join(",")}]`;
  const skip = (message) => {
    done.push(`[2,${JSON.stringify(message)}]`);
    take();
    return done.length;
  };
  return { run, resume, finished, skip, count: () => done.length };
})();
"""


if TYPE_CHECKING:
    import asyncio


@dataclass(frozen=True)
class Runtime:
    """V8 loaded, and the event loop mini-racer delivers results on: both set up before the
    worker confines itself (the loop needs a socket pair). The isolate, whose threads run the
    user's code, is created afterwards, inside the sandbox."""

    binding: ModuleType
    loop: asyncio.AbstractEventLoop


def load() -> Runtime:
    # Imported here: asyncio and the binding cost a Python worker 60 ms it does not need.
    import asyncio  # noqa: PLC0415

    import py_mini_racer  # noqa: PLC0415 - an optional dependency, loaded by its workers only

    py_mini_racer.init_mini_racer(ignore_duplicate_init=True)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True, name="v8-results").start()
    return Runtime(py_mini_racer, loop)


def available() -> bool:
    return importlib.util.find_spec("py_mini_racer") is not None


class Runner:
    """The isolate of one worker."""

    def __init__(self, loaded: Runtime, setup: dict[str, Any]) -> None:
        self.runtime = runtime = loaded.binding
        self.timeout = float(setup["timeout"])
        self.heap = int(setup["heap"])
        self.encoded = bool(setup.get("encoded"))
        # Entered for the worker's whole life (the stack is kept: collecting it would free
        # the isolate); the isolate goes when the process does.
        self._stack = contextlib.ExitStack()
        self.context = self._stack.enter_context(runtime.mini_racer(event_loop=loaded.loop))
        self.context.set_hard_memory_limit(self.heap)
        try:
            self.context.eval(setup["source"], timeout_sec=self.timeout)
        except runtime.JSEvalException as err:
            raise SourceUnusableError(f"JavaScript: {_first_line(err)}") from None
        if self.context.eval("typeof transform") != "function":
            raise SourceUnusableError("Function 'transform' is not defined")
        prelude = _PRELUDE.replace("LIMIT_PRINT", "200").replace(
            "LIMIT_RECORD", str(int(setup["record_limit"]))
        )
        self.context.eval(prelude)
        # Called as functions: a call by name would compile a script holding the whole batch.
        self._run, self._resume, self._count, self._skip, self._finished = (
            self.context.eval(f"__sluice.{name}")
            for name in ("run", "resume", "count", "skip", "finished")
        )
        self._batches = 0
        #: Whether ``transform`` declares a second parameter, the purpose.
        self.uses_purpose = bool(self.context.eval("transform.length >= 2"))

    def run(self, batch: bytes, progress: mmap.mmap) -> str:
        """The answer to a batch (its JSON text, ``[[purpose, input], ...]``): one call into
        V8, whose JSON text is the answer's results."""
        _LENGTH.pack_into(progress, 0, 0)
        text = batch.decode()
        self._batches += 1
        if self._batches % _COLLECT_EVERY == 0:
            # V8 lets its heap grow towards its limit before collecting it fully: a full
            # collection now and then keeps a long run's memory flat, for a few milliseconds.
            self.context.low_memory_notification()
        runtime, deadline = self.runtime, time.monotonic() + self.timeout
        call: tuple[Any, ...] = (self._run, text, self.encoded)
        while True:
            function, *arguments = call
            try:
                out = function(*arguments, timeout_sec=max(0.01, deadline - time.monotonic()))
                return '{"results":' + str(out) + "}"
            except runtime.JSTimeoutException:
                message = f"timed out after {self.timeout:g} s"
            except (runtime.JSOOMException, runtime.JSEvalException) as err:
                # A call interrupted at the heap limit may surface as a bare evaluation error.
                if isinstance(err, runtime.JSOOMException) or (
                    self.context.was_hard_memory_limit_reached()
                ):
                    message = f"ran out of memory (its heap is limited to {self.heap >> 20} MiB)"
                else:
                    message = f"failed inside V8: {_first_line(err)}"
            _LENGTH.pack_into(progress, 0, int(self._count()))
            self._skip(f"JavaScript: {message}")
            if time.monotonic() >= deadline or not message.startswith("timed out"):
                # The batch's time is spent (or the heap may stay full): the parent sends the
                # records left to a fresh worker.
                return '{"exit":true,"results":' + str(self._finished()) + "}"
            call = (self._resume,)


def _first_line(err: Exception) -> str:
    """``<anonymous>:3: SyntaxError: …`` without the source excerpt V8 adds."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return re.sub(r"^<anonymous>:\d+: ", "", text)


def check_source(source: str) -> tuple[str, int, int] | None:
    """(message, line, column) of what makes ``source`` unusable, or None. Compiled, never run:
    the source is wrapped in a function that is created and not called, and a second time with
    a ``let transform`` after it, which V8 refuses exactly when the source declares
    ``transform`` at its top level.

    Compiled in a thread of its own: mini-racer refuses a time limit in a thread running an
    event loop (the operator's and local mode's validation)."""
    with ThreadPoolExecutor(1, thread_name_prefix="v8-check") as thread:
        return thread.submit(_compiled, source).result()


def _compiled(source: str) -> tuple[str, int, int] | None:
    from py_mini_racer import JSParseException, MiniRacer  # noqa: PLC0415 - optional

    context = MiniRacer()
    try:
        for probe in ("", "\n;let transform;"):
            try:
                context.eval(f"(function () {{\n{source}{probe}\n}})", timeout_sec=5)
            except JSParseException as err:
                line, column, message = _located(str(err))
                if probe and "'transform' has already been declared" in message:
                    return None
                if probe:
                    break
                lines = source.splitlines() or [""]
                if line - 1 > len(lines):  # in the wrapper's closing line: the source ended early
                    return "SyntaxError: Unexpected end of input", len(lines), len(lines[-1]) + 1
                return message, line - 1, column
        return "Function 'transform' is not defined", 1, 1
    finally:
        context.close()


def _located(text: str) -> tuple[int, int, str]:
    """Line, column and message of V8's ``<anonymous>:LINE: Message\\nsource\\n   ^``."""
    lines = text.splitlines()
    found = re.match(r"<anonymous>:(\d+): (.*)", lines[0]) if lines else None
    if found is None:
        return 1, 1, text.strip()
    caret = lines[2].find("^") if len(lines) > 2 else -1
    return int(found.group(1)), caret + 1 if caret >= 0 else 1, found.group(2)
