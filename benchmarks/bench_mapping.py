"""How fast compiled mappings transform records, as ratios to hand-written Python.

A mapping is compiled once into closures, so transforming a record should cost about what a
hand-written function producing the same record costs. Two mappings are measured on 200,000
synthetic profiles (seeded, so every run sees the same data):

* the seed pipeline's mapping (``examples/seed-pipeline.yaml``): two bare paths;
* a 20-property mapping with templates, ``if``, ``coalesce``, ``lower``/``initcap``, nested
  paths, numbers and dates, formatted with the default connector time layouts.

Each is timed against a hand-written function in the same run, after checking that both
produce the same records. Target: compiled ≤ 2 × hand-written. Exits 1 when a target is missed.
"""

from __future__ import annotations

import random
import string
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))

from sluice.mapping import CompiledMapping, Purpose, TimeLayouts, compile_mapping
from sluice.model.types import Type, parse_type

PROFILES = 200_000
TARGET_RATIO = 2.0
ROUNDS = 5
SEED_PIPELINE = Path(__file__).resolve().parent.parent / "examples" / "seed-pipeline.yaml"

Profile = dict[str, Any]
Transform = Callable[[Profile], dict[str, Any]]


# ---------------------------------------------------------------------------------------------
# The seed mapping
# ---------------------------------------------------------------------------------------------


def seed_schemas() -> tuple[dict[str, str], Type, Type]:
    spec = yaml.safe_load(SEED_PIPELINE.read_text())["spec"]
    mapping = spec["transformation"]["mapping"]
    return mapping, parse_type(spec["inSchema"]), parse_type(spec["outSchema"])


def seed_profiles(rng: random.Random) -> list[Profile]:
    profiles = []
    for _ in range(PROFILES):
        profile: Profile = {"email": _word(rng, 8) + "@example.com"}
        if rng.random() < 0.95:
            profile["first_name"] = _word(rng, rng.randint(3, 10)).title()
        if rng.random() < 0.9:
            profile["last_name"] = _word(rng, rng.randint(3, 12)).title()
        if rng.random() < 0.8:
            profile["address"] = {"country": rng.choice(["US", "IT", "FR", "DE"])}
        profiles.append(profile)
    return profiles


def seed_by_hand(profile: Profile) -> dict[str, Any]:
    return {
        "contact": {
            "firstname": profile.get("first_name"),
            "lastname": profile.get("last_name"),
        }
    }


# ---------------------------------------------------------------------------------------------
# The 20-property mapping
# ---------------------------------------------------------------------------------------------


def _string(max_length: int | None = None) -> dict[str, Any]:
    return {"kind": "string", "maxLength": max_length} if max_length else {"kind": "string"}


def _properties(members: dict[str, dict[str, Any]], nullable: bool) -> list[dict[str, Any]]:
    return [
        {"name": name, "type": t, "readOptional": not nullable, "nullable": nullable}
        for name, t in members.items()
    ]


WIDE_IN = parse_type(
    {
        "kind": "object",
        "properties": _properties(
            {
                "id": {"kind": "int", "bitSize": 64},
                "first_name": _string(100),
                "last_name": _string(100),
                "nickname": _string(100),
                "email": _string(254),
                "phone": _string(30),
                "age": {"kind": "int", "bitSize": 32},
                "score": {"kind": "float", "bitSize": 64},
                "balance": {"kind": "decimal", "precision": 12, "scale": 2},
                "vip": {"kind": "boolean"},
                "born": {"kind": "date"},
                "signed_up": {"kind": "datetime"},
                "company": _string(100),
                "address": {
                    "kind": "object",
                    "properties": _properties(
                        {"street": _string(), "city": _string(), "country": _string(2)},
                        nullable=False,
                    ),
                },
            },
            nullable=False,
        ),
    }
)

WIDE_OUT = parse_type(
    {
        "kind": "object",
        "properties": [
            {
                "name": "contact",
                "type": {
                    "kind": "object",
                    "properties": _properties(
                        {
                            "firstname": _string(),
                            "lastname": _string(),
                            "fullname": _string(201),
                            "greeting": _string(),
                            "email": _string(254),
                            "phone": _string(),
                            "age": {"kind": "int", "bitSize": 16},
                            "segment": {"kind": "string", "values": ["vip", "standard"]},
                            "score": {"kind": "decimal", "precision": 10, "scale": 2},
                            "balance": {"kind": "float", "bitSize": 64},
                            "birthday": {"kind": "date"},
                            "signed_up_at": {"kind": "datetime"},
                            "city": _string(),
                            "country": _string(2),
                            "street": _string(),
                            "company": _string(),
                            "label": _string(),
                            "vip": {"kind": "boolean"},
                            "source": _string(),
                            "initials": _string(2),
                        },
                        nullable=True,
                    ),
                },
            }
        ],
    }
)

WIDE_MAPPING = {
    "contact.firstname": "initcap(first_name)",
    "contact.lastname": "initcap(last_name)",
    "contact.fullname": 'first_name " " last_name',
    "contact.greeting": '"Hello " coalesce(nickname, first_name) "!"',
    "contact.email": "lower(email)",
    "contact.phone": 'coalesce(phone, "n/a")',
    "contact.age": "age",
    "contact.segment": 'if(vip, "vip", "standard")',
    "contact.score": "score",
    "contact.balance": "balance",
    "contact.birthday": "born",
    "contact.signed_up_at": "signed_up",
    "contact.city": "address.city",
    "contact.country": "upper(address.country)",
    "contact.street": "trim(address.street)",
    "contact.company": "lower(company)",
    "contact.label": '"customer-" id',
    "contact.vip": "vip",
    "contact.source": '"sluice"',
    "contact.initials": "substring(first_name, 1, 1) substring(last_name, 1, 1)",
}


def wide_profiles(rng: random.Random) -> list[Profile]:
    epoch = datetime(2015, 1, 1, tzinfo=UTC)
    profiles = []
    for index in range(PROFILES):
        profile: Profile = {
            "id": index,
            "first_name": _word(rng, rng.randint(3, 10)),
            "last_name": _word(rng, rng.randint(3, 12)),
            "email": _word(rng, 8).capitalize() + "@Example.com",
            "age": rng.randint(18, 90),
            "score": round(rng.uniform(0, 1000), 3),
            "balance": Decimal(rng.randint(-100_000, 100_000)).scaleb(-2),
            "vip": rng.random() < 0.2,
            "born": date(1940, 1, 1) + timedelta(days=rng.randint(0, 25_000)),
            "signed_up": epoch + timedelta(milliseconds=rng.randint(0, 300_000_000_000)),
            "address": {
                "street": f" {rng.randint(1, 999)} {_word(rng, 6).title()} St ",
                "city": _word(rng, 7).title(),
                "country": rng.choice(["us", "it", "fr", "de"]),
            },
        }
        if rng.random() < 0.3:
            profile["nickname"] = _word(rng, 5)
        if rng.random() < 0.7:
            profile["phone"] = "+1" + "".join(rng.choices(string.digits, k=10))
        if rng.random() < 0.5:
            profile["company"] = _word(rng, 9).upper()
        profiles.append(profile)
    return profiles


_CENT = Decimal("0.01")


def wide_by_hand(p: Profile) -> dict[str, Any]:
    """The same record as WIDE_MAPPING with the default time layouts, written by hand."""
    first, last, address = p.get("first_name"), p.get("last_name"), p.get("address")
    nickname, email, phone = p.get("nickname"), p.get("email"), p.get("phone")
    score, balance, born = p.get("score"), p.get("balance"), p.get("born")
    signed_up, age, vip, company = p.get("signed_up"), p.get("age"), p.get("vip"), p.get("company")
    city = country = street = None
    if address is not None:
        city, country, street = address.get("city"), address.get("country"), address.get("street")
    if age is not None and not -32768 <= age <= 32767:
        raise ValueError("age out of range")
    fullname = f"{first or ''} {last or ''}"
    initials = f"{first[:1] if first else ''}{last[:1] if last else ''}"
    email = None if email is None else email.lower()
    country = None if country is None else country.upper()
    for text, limit in ((fullname, 201), (initials, 2), (email, 254), (country, 2)):
        if text is not None and len(text) > limit:
            raise ValueError("too long")
    signed_up_at = None
    if signed_up is not None:
        millis = signed_up.microsecond // 1000
        fraction = f".{millis:03d}".rstrip("0") if millis else ""
        signed_up_at = (
            f"{signed_up.year:04d}-{signed_up.month:02d}-{signed_up.day:02d}T"
            f"{signed_up.hour:02d}:{signed_up.minute:02d}:{signed_up.second:02d}{fraction}Z"
        )
    return {
        "contact": {
            "firstname": first.title() if first is not None else None,
            "lastname": last.title() if last is not None else None,
            "fullname": fullname,
            "greeting": f"Hello {nickname if nickname is not None else first or ''}!",
            "email": email,
            "phone": phone if phone is not None else "n/a",
            "age": age,
            "segment": "vip" if vip else "standard",
            "score": None
            if score is None
            else Decimal(repr(score)).quantize(_CENT, rounding=ROUND_HALF_UP),
            "balance": None if balance is None else float(balance),
            "birthday": None if born is None else born.isoformat(),
            "signed_up_at": signed_up_at,
            "city": city,
            "country": country,
            "street": None if street is None else street.strip(),
            "company": None if company is None else company.lower(),
            "label": f"customer-{p['id']}",
            "vip": vip,
            "source": "sluice",
            "initials": initials,
        }
    }


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def _word(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=length))


def seconds_by_hand(by_hand: Transform, profiles: Sequence[Profile]) -> float:
    start = time.perf_counter()
    for profile in profiles:
        by_hand(profile)
    return time.perf_counter() - start


def seconds_compiled(compiled: CompiledMapping, profiles: Sequence[Profile]) -> float:
    transform, purpose = compiled.transform, Purpose.CREATE
    start = time.perf_counter()
    for profile in profiles:
        transform(profile, purpose)
    return time.perf_counter() - start


def compare(
    label: str, compiled: CompiledMapping, by_hand: Transform, profiles: Sequence[Profile]
) -> float:
    """Print one line of the table; return the ratio compiled / hand-written time."""
    for profile in profiles[:2_000]:
        expected, got = by_hand(profile), compiled.transform(profile, Purpose.CREATE)
        if got != expected:
            raise AssertionError(f"{label}: {got} != {expected} for {profile}")
    # Best of alternating rounds: the least disturbed measurement of each, on a shared machine.
    compiled_time = hand_time = float("inf")
    for _ in range(ROUNDS):
        compiled_time = min(compiled_time, seconds_compiled(compiled, profiles))
        hand_time = min(hand_time, seconds_by_hand(by_hand, profiles))
    ratio = compiled_time / hand_time
    print(
        f"{label:<34}{len(profiles) / compiled_time:>14,.0f}{len(profiles) / hand_time:>14,.0f}"
        f"{ratio:>8.2f}"
    )
    return ratio


def main() -> int:
    rng = random.Random(20260820)
    mapping, seed_in, seed_out = seed_schemas()
    seed = compile_mapping(mapping, seed_in, seed_out, time_layouts=TimeLayouts())
    wide = compile_mapping(WIDE_MAPPING, WIDE_IN, WIDE_OUT, time_layouts=TimeLayouts())
    print(
        f"{'mapping':<34}{'compiled/s':>14}{'by hand/s':>14}{'ratio':>8}  target ≤ {TARGET_RATIO:g}"
    )
    ratios = [
        compare("seed (2 bare paths)", seed, seed_by_hand, seed_profiles(rng)),
        compare("wide (20 properties)", wide, wide_by_hand, wide_profiles(rng)),
    ]
    return 1 if any(ratio > TARGET_RATIO for ratio in ratios) else 0


if __name__ == "__main__":
    sys.exit(main())
