"""Seeded demo profiles for ``make demo``: realistic, deterministic, with the flaws real data has.

Each profile has a first and last name (a few hundred of each, from many cultures), an email
derived from the name on a reserved example domain (``example.com``, ``example.org``,
``example.net`` and their subdomains; lower-case ASCII, accents transliterated), a phone in
E.164 shape for its country, loyalty points from 0 to 50,000 (a tenth at 0, most under a few
thousand) and an address: one of 45 cities with its country code, about half of them in the US,
which the demo's pipeline exports.

On purpose, at fixed rates drawn from the seed:

- about 1 % of profiles have no email (the key is missing);
- about 0.5 % share their email with exactly one other profile: a later profile is the same
  person registered twice (same names, email and address; its own phone and points);
- about 1 % have no last name and about 1 % no city (the country stays).

The same seed gives the same profiles; a larger count only adds profiles after them (the ids'
zero-padding follows the count).
"""

from __future__ import annotations

import argparse
import random
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, NamedTuple

import duckdb

from sluice.model.types import Type, parse_type
from sluice.warehouses.base import Warehouse, open_warehouse
from sluice.warehouses.loading import create_profiles_table, insert_profiles

DEFAULT_SEED = 2026
DEFAULT_COUNT = 100_000
WITHOUT_EMAIL_RATE = 0.01
SHARING_EMAIL_RATE = 0.005
WITHOUT_LAST_NAME_RATE = 0.01
WITHOUT_CITY_RATE = 0.01
NEW_MEMBER_RATE = 0.1
MAX_LOYALTY_POINTS = 50_000
# Profiles per insert: bounds the memory of a load whatever the count.
_CHUNK_PROFILES = 20_000


def _optional(name: str, kind: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "type": kind, "readOptional": True, "description": description}


def _text(length: int) -> dict[str, Any]:
    return {"kind": "string", "maxLength": length}


#: As ``examples/demo/workspace.yaml`` declares it.
_PROFILE_SCHEMA = {
    "kind": "object",
    "properties": [
        _optional("first_name", _text(100), "First name"),
        _optional("last_name", _text(100), "Last name"),
        _optional("email", _text(254), "Email"),
        _optional("phone", _text(32), "Phone number"),
        _optional("loyalty_points", {"kind": "int", "bitSize": 32}, "Loyalty points"),
        _optional(
            "address",
            {
                "kind": "object",
                "properties": [
                    _optional("city", _text(100), "City"),
                    _optional("country", _text(2), "Country"),
                ],
            },
            "Address",
        ),
    ],
}


class _Name(NamedTuple):
    display: str
    #: Lower-case ASCII letters only, for emails.
    ascii: str


class _City(NamedTuple):
    name: str
    country: str
    weight: int
    #: The national numbers' leading digits there: area codes, or mobile prefixes.
    dialing: tuple[str, ...]


class _Person(NamedTuple):
    first: _Name
    last: _Name
    email: str | None
    city: _City


# Letters NFKD does not split into an ASCII letter and an accent.
_UNDECOMPOSED = str.maketrans({"ø": "o", "ł": "l", "ß": "ss", "æ": "ae", "ı": "i", "đ": "d"})


def _ascii_letters(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.lower().translate(_UNDECOMPOSED))
    return "".join(c for c in decomposed if c.isascii() and c.isalpha())


def _names(text: str) -> tuple[_Name, ...]:
    return tuple(_Name(name, _ascii_letters(name)) for name in text.split(", "))


_FIRST_NAMES = _names(
    "James, Mary, John, Patricia, Robert, Jennifer, Michael, Linda, William, Elizabeth, David, "
    "Barbara, Richard, Susan, Joseph, Jessica, Thomas, Sarah, Charles, Karen, Christopher, Nancy, "
    "Daniel, Lisa, Matthew, Betty, Anthony, Margaret, Mark, Sandra, Donald, Ashley, Steven, "
    "Kimberly, Paul, Emily, Andrew, Donna, Joshua, Michelle, Kenneth, Carol, Kevin, Amanda, Brian, "
    "Dorothy, George, Melissa, Timothy, Deborah, Ronald, Stephanie, Edward, Rebecca, Jason, "
    "Sharon, Jeffrey, Laura, Ryan, Cynthia, Jacob, Kathleen, Gary, Amy, Nicholas, Angela, Eric, "
    "Shirley, Jonathan, Anna, Stephen, Brenda, Larry, Pamela, Justin, Emma, Scott, Nicole, "
    "Brandon, Helen, Benjamin, Samantha, Samuel, Katherine, Gregory, Christine, Alexander, Debra, "
    "Frank, Rachel, Patrick, Carolyn, Raymond, Janet, Jack, Catherine, Dennis, Maria, Jerry, "
    "Heather, Tyler, Diane, Aaron, Olivia, Noah, Liam, Ava, Sophia, Mia, Harper, Ethan, Logan, "
    "Chloe, Zoë, Madison, Aiden, Grace, Caleb, Hannah, Owen, Abigail, Isaiah, Jayden, Destiny, "
    "DeShawn, Imani, Malik, Aaliyah, "
    "José, Juan, Luis, Carlos, Jorge, Alejandro, Miguel, Javier, Diego, Sofía, Lucía, Valentina, "
    "Camila, Isabella, Ximena, Guadalupe, Carmen, Rosa, Elena, Pilar, Joaquín, Andrés, Mateo, "
    "Santiago, Inês, João, Gonçalo, Beatriz, Thiago, Larissa, "
    "Pierre, Jean, Luc, Camille, Chloé, Léa, Manon, Hélène, Françoise, François, Étienne, Amélie, "
    "Théo, Mathilde, "
    "Hans, Jürgen, Klaus, Lukas, Leon, Greta, Heidi, Anke, Björn, Søren, Lars, Sven, Ingrid, "
    "Astrid, Freya, Sigrid, Magnus, Mikael, Åsa, Linnea, "
    "Giulia, Francesca, Chiara, Alessandro, Lorenzo, Matteo, Giuseppe, Marco, Luca, Sara, "
    "Olga, Ivan, Dmitri, Natalia, Tatiana, Sergei, Agnieszka, Łukasz, Katarzyna, Piotr, Tomáš, "
    "Zuzana, "
    "Hiroshi, Yuki, Kenji, Aiko, Haruto, Yui, Sakura, Takeshi, Ren, Hina, "
    "Wei, Mei, Jun, Xiu, Ying, Hao, Jing, Lei, Yan, Zhen, "
    "Min-jun, Seo-yeon, Ji-ho, Ha-eun, Jae-won, "
    "Priya, Arjun, Ravi, Ananya, Aarav, Diya, Vikram, Lakshmi, Rohan, Sanjay, Deepa, Kavya, "
    "Rahul, Neha, "
    "Fatima, Omar, Ahmed, Layla, Yusuf, Aisha, Hassan, Zainab, Karim, Noor, Mehmet, Elif, Emre, "
    "Reza, Darius, Shirin, "
    "Chidi, Amara, Kwame, Ama, Ngozi, Oluwaseun, Tunde, Adaeze, Kofi, Abena, Thandiwe, Sipho, "
    "Zanele, Wanjiru, Jabari, "
    "Minh, Linh, Thanh, Anh"
)
_LAST_NAMES = _names(
    "Smith, Johnson, Williams, Brown, Jones, Garcia, Miller, Davis, Rodriguez, Martinez, "
    "Hernandez, Lopez, Gonzalez, Wilson, Anderson, Thomas, Taylor, Moore, Jackson, Martin, Lee, "
    "Perez, Thompson, White, Harris, Sanchez, Clark, Ramirez, Lewis, Robinson, Walker, Young, "
    "Allen, King, Wright, Scott, Torres, Nguyen, Hill, Flores, Green, Adams, Nelson, Baker, Hall, "
    "Rivera, Campbell, Mitchell, Carter, Roberts, Phillips, Evans, Turner, Parker, Collins, "
    "Edwards, Stewart, Morris, Murphy, Cook, Rogers, Morgan, Peterson, Cooper, Reed, Bailey, Bell, "
    "Kelly, Howard, Ward, Cox, Richardson, Wood, Watson, Brooks, Bennett, Gray, James, Hughes, "
    "Price, Sanders, Myers, Long, Ross, Foster, Powell, Jenkins, Perry, Russell, Sullivan, Fisher, "
    "Henderson, Coleman, Simmons, Patterson, Jordan, Reynolds, Hamilton, Graham, O'Brien, "
    "McDonald, O'Connor, Washington, Jefferson, "
    "Fernández, Gómez, Díaz, Muñoz, Álvarez, Romero, Ruiz, Navarro, Castillo, Ortiz, Vargas, "
    "Castro, Morales, Jiménez, Guzmán, Peña, Núñez, Reyes, Cruz, Mendoza, "
    "Silva, Santos, Oliveira, Souza, Pereira, Costa, Almeida, Carvalho, Conceição, "
    "Dubois, Moreau, Laurent, Lefèvre, Girard, Bonnet, Dupont, Lambert, Fontaine, Rousseau, "
    "Mercier, Chevalier, Faure, "
    "Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, Hoffmann, Koch, "
    "Richter, Klein, Wolf, Schröder, Neumann, Braun, Zimmermann, Krüger, Groß, "
    "de Vries, van Dijk, Bakker, Janssen, Visser, Smit, de Jong, "
    "Larsen, Nilsson, Andersson, Johansson, Karlsson, Hansen, Jensen, Nielsen, Eriksson, "
    "Lindqvist, Sørensen, Björk, Håkansson, "
    "Rossi, Russo, Ferrari, Esposito, Bianchi, Romano, Colombo, Ricci, Marino, Greco, Bruno, "
    "Gallo, Conti, De Luca, "
    "Ivanov, Petrova, Smirnov, Kuznetsov, Popov, Volkov, Kowalski, Nowak, Wiśniewski, Wójcik, "
    "Novák, Dvořák, "
    "Tanaka, Suzuki, Sato, Takahashi, Watanabe, Ito, Yamamoto, Nakamura, Kobayashi, Kato, "
    "Wang, Zhang, Chen, Liu, Yang, Huang, Zhao, Wu, Zhou, Xu, Lin, "
    "Park, Choi, Jung, Kang, Cho, Yoon, "
    "Patel, Sharma, Singh, Kumar, Gupta, Reddy, Iyer, Nair, Mehta, Joshi, Rao, Desai, "
    "Khan, Ali, Hassan, Hussein, Ibrahim, Abdullah, Haddad, Yılmaz, Kaya, Demir, Şahin, Hosseini, "
    "Rahimi, "
    "Okafor, Mensah, Boateng, Adeyemi, Okonkwo, Nwosu, Eze, Owusu, Asante, Mwangi, Dlamini, Nkosi, "
    "Diallo, Traoré, "
    "Tran, Le, Pham, Hoang, Vu, Dang"
)
#: Weighted so that about half the profiles live in the US (weights 54 of 106).
_CITIES = (
    _City("New York", "US", 8, ("212", "646", "718", "917")),
    _City("Los Angeles", "US", 6, ("213", "310", "323", "818")),
    _City("Chicago", "US", 5, ("312", "773", "872")),
    _City("Houston", "US", 4, ("713", "281", "832")),
    _City("Phoenix", "US", 3, ("602", "480", "623")),
    _City("Philadelphia", "US", 3, ("215", "267")),
    _City("Dallas", "US", 3, ("214", "469", "972")),
    _City("San Antonio", "US", 2, ("210", "726")),
    _City("San Diego", "US", 2, ("619", "858")),
    _City("Austin", "US", 2, ("512", "737")),
    _City("Seattle", "US", 2, ("206", "425")),
    _City("Denver", "US", 2, ("303", "720")),
    _City("Boston", "US", 2, ("617", "857")),
    _City("Miami", "US", 2, ("305", "786")),
    _City("Atlanta", "US", 2, ("404", "678", "470")),
    _City("San Francisco", "US", 2, ("415", "628")),
    _City("Minneapolis", "US", 2, ("612",)),
    _City("Nashville", "US", 2, ("615", "629")),
    _City("Toronto", "CA", 3, ("416", "647")),
    _City("Montréal", "CA", 2, ("514", "438")),
    _City("Vancouver", "CA", 1, ("604", "778")),
    _City("Mexico City", "MX", 3, ("55",)),
    _City("São Paulo", "BR", 3, ("119",)),
    _City("London", "GB", 4, ("7",)),
    _City("Manchester", "GB", 2, ("7",)),
    _City("Paris", "FR", 3, ("6", "7")),
    _City("Berlin", "DE", 3, ("15", "16", "17")),
    _City("Munich", "DE", 1, ("15", "16", "17")),
    _City("Madrid", "ES", 2, ("6",)),
    _City("Barcelona", "ES", 1, ("6",)),
    _City("Rome", "IT", 2, ("3",)),
    _City("Milan", "IT", 1, ("3",)),
    _City("Amsterdam", "NL", 2, ("6",)),
    _City("Stockholm", "SE", 1, ("7",)),
    _City("Zürich", "CH", 1, ("7",)),
    _City("Warsaw", "PL", 1, ("5", "6", "7")),
    _City("Tokyo", "JP", 3, ("90", "80")),
    _City("Seoul", "KR", 2, ("10",)),
    _City("Shanghai", "CN", 2, ("13", "15", "18")),
    _City("Mumbai", "IN", 2, ("9", "8", "7")),
    _City("Bengaluru", "IN", 2, ("9", "8", "7")),
    _City("Sydney", "AU", 2, ("4",)),
    _City("Lagos", "NG", 2, ("80", "70", "81")),
    _City("Accra", "GH", 1, ("24", "20")),
    _City("Nairobi", "KE", 1, ("7",)),
)
#: Country → calling code and the length of a national number.
_PHONE_NUMBERING = {
    "US": ("1", 10),
    "CA": ("1", 10),
    "MX": ("52", 10),
    "BR": ("55", 11),
    "GB": ("44", 10),
    "FR": ("33", 9),
    "DE": ("49", 11),
    "ES": ("34", 9),
    "IT": ("39", 10),
    "NL": ("31", 9),
    "SE": ("46", 9),
    "CH": ("41", 9),
    "PL": ("48", 9),
    "JP": ("81", 10),
    "KR": ("82", 10),
    "CN": ("86", 11),
    "IN": ("91", 10),
    "AU": ("61", 9),
    "NG": ("234", 10),
    "GH": ("233", 9),
    "KE": ("254", 9),
}
# Repeated by popularity: a choice among them is a weighted choice, as fast as a plain one.
_WEIGHTED_CITIES = tuple(city for city in _CITIES for _ in range(city.weight))
_WEIGHTED_DOMAINS = (
    *("example.com",) * 4,
    *("mail.example.com",) * 2,
    "example.org",
    "example.net",
    "inbox.example.net",
    "shop.example.org",
)


def demo_profile_schema() -> Type:
    """The profile schema of ``examples/workspace.yaml`` (and ``examples/demo/``)."""
    return parse_type(_PROFILE_SCHEMA)


def demo_profiles(count: int, seed: int = DEFAULT_SEED) -> Iterator[tuple[str, dict[str, Any]]]:
    """``count`` ``(profile id, profile)`` pairs, ids ``p1``… zero-padded to the width of
    ``count``; profiles are nested as :mod:`sluice.model.values` decodes them, absent
    properties missing."""
    rng = random.Random(seed)
    width = len(str(count))
    taken_emails: set[str] = set()
    # Profiles with an email no other profile has yet: a copy takes one out, so each shared
    # email is shared by two profiles exactly.
    copyable: list[_Person] = []
    for number in range(1, count + 1):
        draw = rng.random()
        if draw < WITHOUT_EMAIL_RATE:
            person = _new_person(rng, None)
        elif draw < WITHOUT_EMAIL_RATE + SHARING_EMAIL_RATE / 2 and copyable:
            # Swap-remove: O(1), and the order left behind is still determined by the seed.
            index = rng.randrange(len(copyable))
            person = copyable[index]
            copyable[index] = copyable[-1]
            copyable.pop()
        else:
            person = _new_person(rng, taken_emails)
            copyable.append(person)
        yield f"p{number:0{width}d}", _profile(rng, person)


def _new_person(rng: random.Random, taken_emails: set[str] | None) -> _Person:
    """A new person, with an email none has yet unless ``taken_emails`` is None (no email)."""
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    city = rng.choice(_WEIGHTED_CITIES)
    if taken_emails is None:
        return _Person(first, last, None, city)
    local = _email_local_part(rng, first.ascii, last.ascii)
    domain = rng.choice(_WEIGHTED_DOMAINS)
    email = f"{local}@{domain}"
    while email in taken_emails:
        email = f"{local}{rng.randrange(100, 10_000)}@{domain}"
    taken_emails.add(email)
    return _Person(first, last, email, city)


def _email_local_part(rng: random.Random, first: str, last: str) -> str:
    style = rng.randrange(5)
    if style == 0:
        return f"{first}.{last}"
    if style == 1:
        return f"{first}.{last}{rng.randrange(1, 100)}"
    if style == 2:
        return f"{first[0]}{last}"
    if style == 3:
        return f"{first}_{last}{rng.randrange(1950, 2008)}"
    return f"{first}{last[0]}{rng.randrange(1, 1000)}"


def _profile(rng: random.Random, person: _Person) -> dict[str, Any]:
    city = person.city
    profile: dict[str, Any] = {"first_name": person.first.display}
    if rng.random() >= WITHOUT_LAST_NAME_RATE:
        profile["last_name"] = person.last.display
    if person.email is not None:
        profile["email"] = person.email
    profile["phone"] = _phone(rng, city)
    profile["loyalty_points"] = _loyalty_points(rng)
    address = {"city": city.name, "country": city.country}
    if rng.random() < WITHOUT_CITY_RATE:
        del address["city"]
    profile["address"] = address
    return profile


def _phone(rng: random.Random, city: _City) -> str:
    calling_code, national_length = _PHONE_NUMBERING[city.country]
    leading = rng.choice(city.dialing)
    digits = national_length - len(leading)
    # The first digit after an area code or prefix is never 0 or 1 (as in the NANP).
    subscriber = rng.randrange(2 * 10 ** (digits - 1), 10**digits)
    return f"+{calling_code}{leading}{subscriber}"


def _loyalty_points(rng: random.Random) -> int:
    if rng.random() < NEW_MEMBER_RATE:
        return 0
    # Log-normal: a median of about 700 points, a long tail of loyal customers up to the cap.
    return min(int(rng.lognormvariate(6.5, 1.3)), MAX_LOYALTY_POINTS)


def load_demo_profiles(
    warehouse: Warehouse,
    count: int,
    seed: int = DEFAULT_SEED,
    table: str = "profiles",
    id_column: str = "_kpid",
) -> int:
    """Create (replacing) the profiles table and fill it with :func:`demo_profiles`; returns
    how many were inserted."""
    schema = demo_profile_schema()
    create_profiles_table(warehouse, table, id_column, schema)
    profiles = demo_profiles(count, seed)
    inserted = 0
    while chunk := list(islice(profiles, _CHUNK_PROFILES)):
        inserted += insert_profiles(warehouse, table, id_column, schema, chunk)
    return inserted


@dataclass(frozen=True)
class DemoCounts:
    """What a set of demo profiles holds, as the command line reports it."""

    total: int
    in_us: int
    without_email: int
    #: Profiles whose email another profile has too (both of them counted).
    sharing_email: int


def count_profiles(profiles: Iterable[tuple[str, Mapping[str, Any]]]) -> DemoCounts:
    """Count the profiles, those in the US, without email and sharing an email."""
    total = in_us = 0
    emails: Counter[str] = Counter()
    for _, profile in profiles:
        total += 1
        in_us += profile.get("address", {}).get("country") == "US"
        if "email" in profile:
            emails[profile["email"]] += 1
    return DemoCounts(
        total=total,
        in_us=in_us,
        without_email=total - emails.total(),
        sharing_email=sum(n for n in emails.values() if n > 1),
    )


def create_demo_warehouse(path: str, count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> str:
    """Create (replacing) the table profiles of demo profiles in the DuckDB file ``path``, the
    file created if missing; returns the line saying what it holds."""
    # open_warehouse opens existing files only, so a missing one is created first.
    duckdb.connect(path).close()
    warehouse = open_warehouse("DuckDB", path=path)
    try:
        load_demo_profiles(warehouse, count, seed)
    finally:
        warehouse.close()
    counts = count_profiles(demo_profiles(count, seed))
    return (
        f"created {counts.total:,} demo profiles in {path} ({counts.in_us:,} in the US, "
        f"{counts.without_email:,} without email, {counts.sharing_email:,} sharing an email)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sluice.demo.profiles",
        description="Create (replacing) the table profiles of seeded demo profiles in a DuckDB "
        "warehouse, the file created if missing.",
    )
    parser.add_argument("--duckdb", required=True, metavar="PATH", help="the DuckDB file")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, metavar="N")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="S")
    args = parser.parse_args(argv)
    print(create_demo_warehouse(args.duckdb, args.count, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
