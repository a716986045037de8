"""Read Kubernetes manifests from files and folders, remembering where every member came from.

Errors in manifests are reported at the line of the offending member, like a compiler would,
so each parsed document keeps the line of each of its members.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sluice.model.errors import Location, did_you_mean
from sluice.model.resources import KINDS, Resource
from sluice.model.specs import API_GROUP, GROUP_VERSION

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
DEFAULT_NAMESPACE = "default"
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_TOP_LEVEL_KEYS = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})


def _kubectl_loader() -> type[yaml.SafeLoader]:
    """A YAML loader that reads scalars as kubectl does (sigs.k8s.io/yaml, YAML 1.1): an
    unquoted ``yes``, ``no``, ``on``, ``off`` and, unlike PyYAML, ``y`` and ``n`` (in their
    case variants) are booleans, so a manifest means here what ``kubectl apply`` stores."""
    # libyaml's parser is ten times faster than the pure-Python one and gives the same nodes
    # and marks; PyYAML's wheels ship it, a source build may not.
    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    bool_values = {**base.bool_values, "y": True, "n": False}
    loader: type[yaml.SafeLoader] = type("KubectlLoader", (base,), {"bool_values": bool_values})
    loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile("^(?:y|Y|n|N)$"), "yYnN")
    return loader


_LOADER = _kubectl_loader()


@dataclass(frozen=True)
class Document:
    """One YAML document of a manifest file."""

    file: str
    line: int
    data: Any
    lines: Mapping[Location, int] = field(default_factory=dict)
    #: Where the document is inside a List (``items[2]``); empty for a document of its own.
    position: str = ""

    def line_of(self, location: Location) -> int:
        """The line of the member at ``location``, or of its nearest enclosing member."""
        for end in range(len(location), 0, -1):
            line = self.lines.get(location[:end])
            if line is not None:
                return line
        return self.line

    def items(self) -> Iterator[Document]:
        """The documents of a List (``kubectl get -o yaml`` prints one), each with its lines."""
        items = self.data["items"]
        lines: list[dict[Location, int]] = [{} for _ in items]
        for location, line in self.lines.items():
            if len(location) >= 2 and location[0] == "items":
                index = location[1]
                assert isinstance(index, int)
                lines[index][location[2:]] = line
        for index, item in enumerate(items):
            position = f"{self.position}.items[{index}]" if self.position else f"items[{index}]"
            start = self.line_of(("items", index))
            yield Document(self.file, start, item, lines[index], position)


@dataclass(frozen=True)
class Problem:
    """Something wrong in a manifest, at a line: unreadable YAML, an unknown kind, an invalid
    resource (then with the API error's status, code and field)."""

    file: str
    line: int
    message: str
    subject: str | None = None
    status: int | None = None
    code: str | None = None
    field: str | None = None

    def text(self) -> str:
        subject = f" {self.subject}:" if self.subject else ""
        return f"{self.file}:{self.line}:{subject} {self.message}"


@dataclass(frozen=True)
class SluiceObject:
    resource: Resource
    document: Document

    @property
    def subject(self) -> str:
        return f"{self.resource.kind}/{self.resource.namespace}/{self.resource.name}"


@dataclass
class Manifests:
    """Everything read from a set of paths."""

    objects: list[SluiceObject] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: The ``v1`` Secrets found, by (namespace, name): their values by key (``data`` decoded).
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    @property
    def resources(self) -> list[Resource]:
        return [o.resource for o in self.objects]


def manifest_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The files named, and the manifest files below the folders named, in a stable order;
    each file once, however often it is named (a folder and a file in it, a symbolic link)."""
    seen: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in MANIFEST_SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            files = [path]
        for file in files:
            resolved = file.resolve()
            if resolved not in seen:
                seen.add(resolved)
                yield file


def read_manifests(paths: Iterable[str | Path]) -> Manifests:
    manifests = Manifests()
    seen: dict[tuple[str, str, str], Document] = {}
    for path in manifest_files(paths):
        for item in read_documents(path):
            if isinstance(item, Problem):
                manifests.problems.append(item)
            else:
                _classify(item, manifests, seen)
    return manifests


def read_documents(path: Path) -> Iterator[Document | Problem]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        yield Problem(str(path), 0, f"cannot read file: {err}")
        return
    loader = _LOADER(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[Location, int] = {}
            duplicate = _record_lines(node, (), lines)
            if duplicate:
                yield Problem(str(path), duplicate[1], f'duplicate key "{duplicate[0]}"')
                continue
            data = loader.construct_document(node)
            if data is not None:
                yield Document(str(path), node.start_mark.line + 1, data, lines)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(err, "problem", None) or str(err)
        yield Problem(str(path), line, f"malformed YAML: {problem}")
    finally:
        loader.dispose()


def _record_lines(
    node: yaml.Node, location: Location, lines: dict[Location, int]
) -> tuple[str, int] | None:
    """Fill ``lines`` for every member below ``node``; return a duplicate key if one is found."""
    lines[location] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            key = key_node.value
            if key in keys:
                return key, key_node.start_mark.line + 1
            keys.add(key)
            lines[(*location, key)] = key_node.start_mark.line + 1
            duplicate = _record_lines(value_node, (*location, key), lines)
            if duplicate:
                return duplicate
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            duplicate = _record_lines(item, (*location, index), lines)
            if duplicate:
                return duplicate
    return None


def _classify(
    document: Document, manifests: Manifests, seen: dict[tuple[str, str, str], Document]
) -> None:
    data = document.data

    def problem(message: str, location: Location = (), subject: str | None = None) -> None:
        # Inside a List, a document not yet known by kind and name is known by its position.
        subject = subject or document.position or None
        manifests.problems.append(
            Problem(document.file, document.line_of(location), message, subject)
        )

    if not isinstance(data, dict):
        problem("a manifest must be an object with apiVersion and kind")
        return
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        problem("a manifest must have a string apiVersion and kind")
        return
    if kind.endswith("List") and isinstance(data.get("items"), list):
        # A List (what `kubectl get -o yaml` prints), as kubectl reads one: item by item.
        for item in document.items():
            _classify(item, manifests, seen)
        return
    metadata = data.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    namespace = metadata.get("namespace", DEFAULT_NAMESPACE)
    name = metadata.get("name")
    if api_version == "v1" and kind == "Secret" and isinstance(name, str):
        manifests.secrets[str(namespace), name] = _secret_values(data)
        return
    if api_version.split("/")[0] != API_GROUP:
        return  # another API group: not ours to check
    if api_version != GROUP_VERSION:
        problem(
            f'unknown version "{api_version}": this Sluice serves {GROUP_VERSION}', ("apiVersion",)
        )
        return
    if kind not in KINDS:
        problem(f'unknown kind "{kind}" in {GROUP_VERSION}: expected {", ".join(KINDS)}', ("kind",))
        return
    if not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
        problem(
            f"{kind} metadata.name must be a lowercase DNS subdomain name, not {name!r}",
            ("metadata", "name"),
        )
        return
    if not isinstance(namespace, str) or not _DNS_SUBDOMAIN.match(namespace):
        problem(f"{kind} metadata.namespace {namespace!r} is not valid", ("metadata", "namespace"))
        return
    subject = f"{kind}/{namespace}/{name}"
    for key in data:
        if key not in _TOP_LEVEL_KEYS:
            problem(f'unknown field "{key}"{did_you_mean(key, _TOP_LEVEL_KEYS)}', (key,), subject)
            return
    if "spec" not in data:
        problem("spec is required", (), subject)
        return
    first = seen.setdefault((kind, namespace, name), document)
    if first is not document:
        problem(f"declared twice: first in {first.file}:{first.line}", (), subject)
        return
    resource = Resource(kind, namespace, name, data["spec"])
    manifests.objects.append(SluiceObject(resource, document))


def _secret_values(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's values: ``data`` is base64 (undecodable values are kept as written, for the
    API server to refuse); ``stringData`` is plain and wins, as on the API server."""
    values: dict[str, str] = {}
    data = secret.get("data")
    if isinstance(data, dict):
        for key, encoded in data.items():
            try:
                values[str(key)] = base64.b64decode(str(encoded), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                values[str(key)] = str(encoded)
    plain = secret.get("stringData")
    if isinstance(plain, dict):
        values.update({str(key): str(value) for key, value in plain.items()})
    return values
