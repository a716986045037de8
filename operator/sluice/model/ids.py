"""Pipeline ids and default schedule starts, derived from names so every cluster agrees.

A pipeline's id is the first number of a fixed probe sequence, derived from its namespace and
name, that no other pipeline holds: candidate ``k`` is the first 31 bits of
SHA-256(``"<namespace>/<name>"``) for ``k = 0`` and of SHA-256(``"<namespace>/<name>#<k>"``)
after that, skipping 0. With N pipelines two first candidates collide with probability about
N²/2³² (2 in a million for 100 pipelines), so in practice the id is the first candidate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterable, Iterator, Mapping

MAX_ID = 2**31 - 1
MINUTES_PER_DAY = 1440


def id_in_range(digits: str) -> int | None:
    """The id that a text of decimal digits names, or None when it is above MAX_ID: ids are
    drawn below it, so such a text names nothing. Never converts a text longer than MAX_ID's
    (Python refuses ints of more than 4,300 digits)."""
    if len(digits) > len(str(MAX_ID)):
        return None
    value = int(digits)
    return value if value <= MAX_ID else None


def id_candidates(namespace: str, name: str) -> Iterator[int]:
    key = f"{namespace}/{name}"
    attempt = 0
    while True:
        seed = key if attempt == 0 else f"{key}#{attempt}"
        candidate = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:4], "big") & MAX_ID
        if candidate:
            yield candidate
        attempt += 1


def pipeline_id(namespace: str, name: str, taken: Container[int] = ()) -> int:
    """The pipeline's id: its first candidate that is not ``taken`` by another pipeline."""
    return next(c for c in id_candidates(namespace, name) if c not in taken)


def workspace_id(namespace: str, taken: Container[int] = ()) -> int:
    """A Workspace's id, derived like a pipeline's from its namespace alone (one Workspace per
    namespace; no pipeline has an empty name, so the two never share a key)."""
    return pipeline_id(namespace, "", taken)


def assign_pipeline_ids(
    keys: Iterable[tuple[str, str]], existing: Mapping[tuple[str, str], int] | None = None
) -> dict[tuple[str, str], int]:
    """Ids for a whole set of (namespace, name) pipelines, in a stable order.

    Pipelines that already have an id (``existing``, from the store) keep it; the others are
    served in sorted order, so a collision is resolved the same way whatever order the
    manifests were read in.
    """
    wanted = set(keys)
    existing = existing or {}
    ids = {key: existing[key] for key in wanted if key in existing}
    taken = set(existing.values())
    for namespace, name in sorted(wanted - ids.keys()):
        ids[namespace, name] = pipeline_id(namespace, name, taken)
        taken.add(ids[namespace, name])
    return ids


def default_schedule_start(pipeline_id: int) -> int:
    """A start minute spread evenly by id: every period divides a day, so ``id mod period``
    is uniform too."""
    return pipeline_id % MINUTES_PER_DAY
