"""JSON for the export's hot paths: request bodies, application answers, acknowledgements.

orjson encodes a batch of 100 contacts in a fourteenth of the standard library's time and
decodes an answer in about half; a first export encodes and decodes once per 100 profiles.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value``."""
    try:
        return orjson.dumps(value)
    except TypeError:
        # orjson refuses integers beyond 64 bits and non-string keys; the standard library
        # writes the former and converts the latter as JSON always did here.
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def decode_json(content: bytes | str) -> Any:
    """The value of a JSON document; raises ``ValueError`` when it is not one."""
    return orjson.loads(content)
