"""The hot-path JSON helpers agree with the standard library where orjson alone would not."""

from __future__ import annotations

import json

import pytest

from sluice.fastjson import decode_json, encode_json


def test_compact_utf8_without_escapes() -> None:
    assert encode_json({"name": "Zoë", "n": [1, 2.5, None, True]}) == (
        '{"name":"Zoë","n":[1,2.5,null,true]}'.encode()
    )


def test_integers_beyond_64_bits_are_written_exactly() -> None:
    value = {"points": 2**70, "negative": -(2**65)}
    assert json.loads(encode_json(value)) == value


def test_non_string_keys_are_converted_like_the_standard_library() -> None:
    assert encode_json({1: "one", 2.5: "half"}) == b'{"1":"one","2.5":"half"}'


def test_decodes_bytes_and_text() -> None:
    assert decode_json(b'{"results":[{"id":"101"}]}') == {"results": [{"id": "101"}]}
    assert decode_json("[1,2]") == [1, 2]


@pytest.mark.parametrize("content", [b"", b"<html>502</html>", b'{"a":'])
def test_invalid_documents_raise_value_error(content: bytes) -> None:
    with pytest.raises(ValueError):
        decode_json(content)
