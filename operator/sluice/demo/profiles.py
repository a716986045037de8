"""Seeded demo profiles for ``make demo``: realistic, deterministic, with the flaws real data has.

Each profile has a first and last name, an email on a reserved example domain, a phone, loyalty
points and an address (city and country), as ``examples/demo/workspace.yaml`` declares them.
About half live in the US, which the demo's pipeline exports. On purpose, about 1 % have no
email (Sluice reports them as without a matching value), about 0.5 % share their email with an
earlier profile (reported as duplicates), and about 2 % have no last name or no city.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from sluice.model.types import Type, parse_type
from sluice.warehouses.base import Warehouse
from sluice.warehouses.loading import create_profiles_table, insert_profiles

DEFAULT_SEED = 2026
_CHUNK = 20_000
_WITHOUT_EMAIL = 0.01
_SHARED_EMAIL = 0.005
_INCOMPLETE = 0.02


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FIRST_NAMES = _words(
    "james mary john patricia robert jennifer michael linda william elizabeth david barbara "
    "richard susan joseph jessica thomas sarah charles karen daniel nancy matthew lisa anthony "
    "betty mark sandra donald ashley steven emily andrew donna joshua michelle kevin carol brian "
    "amanda george melissa maria jose juan carmen luis ana carlos lucia pedro sofia miguel elena "
    "hiroshi yuki kenji aiko wei mei li jun priya arjun ravi ananya fatima omar ahmed layla "
    "olga ivan dmitri anna lars ingrid sven astrid pierre claire louis camille giulia marco "
    "francesca luca hans greta klaus heidi chidi amara kwame ama noah olivia liam emma"
)
_LAST_NAMES = _words(
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez "
    "gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris "
    "sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen "
    "hill flores green adams nelson baker hall rivera campbell mitchell carter roberts tanaka "
    "suzuki sato wang zhang chen patel sharma singh khan ali ivanov petrova larsen nilsson "
    "dubois moreau rossi russo bianchi muller schmidt schneider okafor mensah boateng kowalski"
)
#: Cities with their country; the US ones come often enough for about half the profiles.
_CITIES = (
    ("New York", "US", 9),
    ("Los Angeles", "US", 7),
    ("Chicago", "US", 6),
    ("Houston", "US", 5),
    ("Phoenix", "US", 4),
    ("Philadelphia", "US", 4),
    ("San Antonio", "US", 3),
    ("San Diego", "US", 3),
    ("Dallas", "US", 3),
    ("Austin", "US", 3),
    ("Seattle", "US", 3),
    ("Denver", "US", 2),
    ("Boston", "US", 2),
    ("Miami", "US", 2),
    ("Atlanta", "US", 2),
    ("Toronto", "CA", 4),
    ("Vancouver", "CA", 2),
    ("Mexico City", "MX", 4),
    ("London", "GB", 5),
    ("Manchester", "GB", 2),
    ("Paris", "FR", 4),
    ("Lyon", "FR", 1),
    ("Berlin", "DE", 3),
    ("Munich", "DE", 2),
    ("Madrid", "ES", 3),
    ("Barcelona", "ES", 2),
    ("Rome", "IT", 2),
    ("Milan", "IT", 2),
    ("Amsterdam", "NL", 2),
    ("Stockholm", "SE", 1),
    ("Warsaw", "PL", 1),
    ("Tokyo", "JP", 4),
    ("Osaka", "JP", 1),
    ("Shanghai", "CN", 2),
    ("Mumbai", "IN", 3),
    ("Bangalore", "IN", 2),
    ("Sydney", "AU", 2),
    ("Lagos", "NG", 2),
    ("Accra", "GH", 1),
    ("São Paulo", "BR", 3),
)
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "shop.example.org")
_PROFILE_SCHEMA = {
    "kind": "object",
    "properties": [
        {"name": "first_name", "type": {"kind": "string", "maxLength": 100}, "readOptional": True},
        {"name": "last_name", "type": {"kind": "string", "maxLength": 100}, "readOptional": True},
        {"name": "email", "type": {"kind": "string", "maxLength": 254}, "readOptional": True},
        {"name": "phone", "type": {"kind": "string", "maxLength": 32}, "readOptional": True},
        {
            "name": "loyalty_points",
            "type": {"kind": "int", "bitSize": 32},
            "readOptional": True,
        },
        {
            "name": "address",
            "type": {
                "kind": "object",
                "properties": [
                    {
                        "name": "city",
                        "type": {"kind": "string", "maxLength": 100},
                        "readOptional": True,
                    },
                    {
                        "name": "country",
                        "type": {"kind": "string", "maxLength": 2},
                        "readOptional": True,
                    },
                ],
            },
            "readOptional": True,
        },
    ],
}


def demo_profile_schema() -> Type:
    """The profile schema of ``examples/demo/workspace.yaml``."""
    return parse_type(_PROFILE_SCHEMA)


def demo_profiles(count: int, seed: int = DEFAULT_SEED) -> Iterator[tuple[str, dict[str, Any]]]:
    """``count`` ``(profile id, profile)`` pairs, the same for the same seed."""
    rng = random.Random(seed)
    cities = [(city, country) for city, country, weight in _CITIES for _ in range(weight)]
    width = len(str(count))
    emails: list[str] = []
    for number in range(1, count + 1):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        city, country = rng.choice(cities)
        profile: dict[str, Any] = {
            "first_name": first.title(),
            "last_name": last.title(),
            "phone": f"+1{rng.randrange(200, 1000)}{rng.randrange(1000000, 10000000)}",
            "loyalty_points": int(rng.paretovariate(1.5) * 100) % 50_000,
            "address": {"city": city, "country": country},
        }
        draw = rng.random()
        if draw < _WITHOUT_EMAIL:
            pass  # no email: not exportable, reported
        elif draw < _WITHOUT_EMAIL + _SHARED_EMAIL and emails:
            profile["email"] = rng.choice(emails)  # a duplicate of an earlier profile's
        else:
            email = f"{first}.{last}{number}@{rng.choice(_DOMAINS)}"
            profile["email"] = email
            emails.append(email)
        if rng.random() < _INCOMPLETE:
            del profile["last_name"]
        if rng.random() < _INCOMPLETE:
            del profile["address"]["city"]
        yield f"p{number:0{width}d}", profile


def load_demo_profiles(
    warehouse: Warehouse,
    count: int,
    seed: int = DEFAULT_SEED,
    table: str = "profiles",
    id_column: str = "_kpid",
) -> int:
    """Create (replacing) the profiles table and fill it; returns how many were inserted."""
    schema = demo_profile_schema()
    create_profiles_table(warehouse, table, id_column, schema)
    inserted = 0
    chunk: list[tuple[str, dict[str, Any]]] = []
    for pair in demo_profiles(count, seed):
        chunk.append(pair)
        if len(chunk) == _CHUNK:
            inserted += insert_profiles(warehouse, table, id_column, schema, chunk)
            chunk = []
    return inserted + insert_profiles(warehouse, table, id_column, schema, chunk)
