"""The matching value the application receives, converted from the profile's."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from sluice.engine.matching import MatchingValueError, matching_value
from sluice.model.types import parse_type


def t(kind: str, **params: Any) -> Any:
    return parse_type({"kind": kind, **params})


@pytest.mark.parametrize(
    ("in_type", "out_type", "value", "expected"),
    [
        (t("string"), t("string"), "ada@example.com", "ada@example.com"),
        (t("int", bitSize=64), t("string"), 12345678901234, "12345678901234"),
        (t("int", bitSize=32), t("int", bitSize=64), 7, 7),
        (t("string"), t("int", bitSize=16), "-42", -42),
        (
            t("string"),
            t("uuid"),
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        ),
        (t("uuid"), t("string"), uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (t("uuid"), t("uuid"), uuid.UUID(int=1), uuid.UUID(int=1)),
    ],
)
def test_conversions(in_type: Any, out_type: Any, value: Any, expected: Any) -> None:
    assert matching_value("id", in_type, "id", out_type, value) == expected


@pytest.mark.parametrize(
    ("in_type", "out_type", "value"),
    [
        (t("string"), t("string", maxLength=3), "toolong"),
        (t("string"), t("string", values=["a", "b"]), "c"),
        (t("string"), t("int", bitSize=8), "300"),
        (t("string"), t("int", bitSize=8), "12a"),
        (t("string"), t("int", bitSize=8), "1e2"),
        (t("int", bitSize=32), t("int", bitSize=8, unsigned=True), -1),
        (t("string"), t("uuid"), "not-a-uuid"),
    ],
)
def test_unconvertible_values(in_type: Any, out_type: Any, value: Any) -> None:
    with pytest.raises(MatchingValueError) as caught:
        matching_value("email", in_type, "contact.email", out_type, value)
    assert str(caught.value) == (
        "email property value cannot be converted to the application's contact.email property"
    )
