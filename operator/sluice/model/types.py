"""The schema type system: the JSON shape of profile and pipeline schemas.

A schema is a type of kind ``object``. Types parse from the JSON the API accepts and serialize back
to its canonical JSON (the API always emits ``description``), so ``to_json(parse_type(x))`` is a
fixed point. Parse errors carry the API's message and the path of the offending member.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

JsonPath = tuple[str | int, ...]


class Kind(StrEnum):
    STRING = "string"
    BOOLEAN = "boolean"
    INT = "int"
    FLOAT = "float"
    DECIMAL = "decimal"
    DATETIME = "datetime"
    DATE = "date"
    TIME = "time"
    YEAR = "year"
    UUID = "uuid"
    JSON = "json"
    IP = "ip"
    ARRAY = "array"
    OBJECT = "object"
    MAP = "map"


NUMERIC_KINDS = frozenset({Kind.INT, Kind.FLOAT, Kind.DECIMAL})
CONTAINER_KINDS = frozenset({Kind.ARRAY, Kind.OBJECT, Kind.MAP})
INT_BIT_SIZES = (8, 16, 24, 32, 64)
FLOAT_BIT_SIZES = (32, 64)
MAX_STRING_LIMIT = 2**32 - 1
MAX_ELEMENTS_LIMIT = 2**31 - 1
MAX_PRECISION = 76
MAX_SCALE = 37
FLOAT32_MAX = 3.4028234663852886e38
# How deeply types may nest (objects, arrays and maps count alike). Real schemas stay far below;
# the bound turns a hostile manifest into a SchemaError instead of a RecursionError.
MAX_TYPE_DEPTH = 64

Number = int | float | Decimal


class SchemaError(ValueError):
    """A schema that cannot be parsed; ``path`` locates the offending JSON member."""

    def __init__(self, message: str, path: JsonPath = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Type:
    """One type; only the parameters of its kind are meaningful."""

    kind: Kind
    max_length: int | None = None
    max_bytes: int | None = None
    pattern: str | None = None
    values: tuple[str, ...] | None = None
    bit_size: int = 0
    unsigned: bool = False
    real: bool = False
    minimum: Number | None = None
    maximum: Number | None = None
    precision: int = 0
    scale: int = 0
    element_type: Type | None = None
    min_elements: int | None = None
    max_elements: int | None = None
    unique_elements: bool = False
    properties: tuple[Property, ...] = ()

    def __str__(self) -> str:
        """The canonical short form used inside messages: ``int(32)``, ``array(string)``."""
        match self.kind:
            case Kind.INT:
                return f"{'uint' if self.unsigned else 'int'}({self.bit_size})"
            case Kind.FLOAT:
                return f"float({self.bit_size})"
            case Kind.DECIMAL:
                return f"decimal({self.precision},{self.scale})"
            case Kind.ARRAY | Kind.MAP:
                return f"{self.kind}({self.element_type})"
            case _:
                return str(self.kind)

    def property(self, name: str) -> Property | None:
        """The direct property called ``name`` of an object type, if any."""
        for prop in self.properties:
            if prop.name == name:
                return prop
        return None


@dataclass(frozen=True, slots=True)
class Property:
    name: str
    type: Type
    prefilled: str = ""
    create_required: bool = False
    update_required: bool = False
    read_optional: bool = False
    nullable: bool = False
    description: str = ""


def object_type(*properties: Property) -> Type:
    return Type(Kind.OBJECT, properties=tuple(properties))


# ---------------------------------------------------------------------------------------------
# Names and paths
# ---------------------------------------------------------------------------------------------

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_valid_property_name(name: str) -> bool:
    return _NAME_RE.match(name) is not None


def is_valid_property_path(path: str) -> bool:
    return path != "" and all(is_valid_property_name(part) for part in path.split("."))


def first_nested_pair(paths: Iterable[str]) -> tuple[str, str] | None:
    """The first two paths where one is an ancestor of the other (``a`` and ``a.b``), if any.

    In sorted order a path's descendants follow it directly: no path character sorts below
    ".", so nothing can sit between ``a`` and ``a.b`` but other descendants of ``a``.
    """
    for shorter, longer in itertools.pairwise(sorted(paths)):
        if longer.startswith(shorter + "."):
            return shorter, longer
    return None


def is_meta_property(name: str) -> bool:
    """Names starting with ``_`` are reserved for the profile store (``_kpid``, ...)."""
    return name.startswith("_")


def property_by_path(schema: Type, path: str) -> Property:
    """The property at a dot path, walking through objects only."""
    current: Type | None = schema
    found: Property | None = None
    for name in path.split("."):
        found = current.property(name) if current is not None else None
        if found is None:
            raise KeyError(f'property path "{path}" does not exist')
        current = found.type if found.type.kind is Kind.OBJECT else None
    assert found is not None
    return found


def walk_properties(schema: Type, prefix: str = "") -> Iterator[tuple[str, Property]]:
    """Every property of an object type at every depth (through objects), parents first."""
    for prop in schema.properties:
        path = f"{prefix}{prop.name}"
        yield path, prop
        if prop.type.kind is Kind.OBJECT:
            yield from walk_properties(prop.type, path + ".")


def column_name(path: str) -> str:
    """The flattened warehouse column of a path: ``address.country`` → ``address_country``."""
    return path.replace(".", "_")


def leaf_paths(schema: Type) -> list[str]:
    return [path for path, prop in walk_properties(schema) if prop.type.kind is not Kind.OBJECT]


def prune(schema: Type, keep: Sequence[str]) -> Type:
    """The object type restricted to the given paths (an object path keeps its whole subtree)."""
    props: list[Property] = []
    for prop in schema.properties:
        if prop.name in keep:
            props.append(prop)
            continue
        prefix = prop.name + "."
        below = [path[len(prefix) :] for path in keep if path.startswith(prefix)]
        if below and prop.type.kind is Kind.OBJECT:
            pruned = prune(prop.type, below)
            # An object left without properties is not a valid type: drop it with its subtree.
            if pruned.properties:
                props.append(replace(prop, type=pruned))
    return replace(schema, properties=tuple(props))


# ---------------------------------------------------------------------------------------------
# Ranges
# ---------------------------------------------------------------------------------------------


def int_range(bit_size: int, unsigned: bool) -> tuple[int, int]:
    if unsigned:
        return 0, 2**bit_size - 1
    return -(2 ** (bit_size - 1)), 2 ** (bit_size - 1) - 1


def float_range(bit_size: int) -> tuple[float, float]:
    limit = FLOAT32_MAX if bit_size == 32 else 1.7976931348623157e308
    return -limit, limit


def decimal_range(precision: int, scale: int) -> tuple[Decimal, Decimal]:
    # Built from its digits: arithmetic in the default 28-digit context would round the bounds of
    # wider decimals (decimal(30,0) would admit 10**30).
    largest = Decimal((0, (9,) * precision, -scale))
    return largest.copy_negate(), largest  # copy_negate: unary minus would round too


def default_range(t: Type) -> tuple[Number, Number]:
    match t.kind:
        case Kind.INT:
            return int_range(t.bit_size, t.unsigned)
        case Kind.FLOAT:
            return float_range(t.bit_size)
        case _:
            return decimal_range(t.precision, t.scale)


def effective_range(t: Type) -> tuple[Number, Number]:
    """The bounds of a numeric type, its own minimum/maximum or the full range of its size."""
    low, high = default_range(t)
    return (
        t.minimum if t.minimum is not None else low,
        t.maximum if t.maximum is not None else high,
    )


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

PROPERTY_KEYS = (
    "name",
    "prefilled",
    "type",
    "createRequired",
    "updateRequired",
    "readOptional",
    "nullable",
    "description",
)
_PROPERTY_FLAGS = {
    "createRequired": "create_required",
    "updateRequired": "update_required",
    "readOptional": "read_optional",
    "nullable": "nullable",
}
TYPE_KEYS = frozenset(
    {
        "kind",
        "maxLength",
        "maxBytes",
        "pattern",
        "values",
        "bitSize",
        "unsigned",
        "real",
        "minimum",
        "maximum",
        "precision",
        "scale",
        "elementType",
        "minElements",
        "maxElements",
        "uniqueElements",
        "properties",
    }
)


def parse_type(data: Any, path: JsonPath = ()) -> Type:
    """Parse the JSON form of a type; raise :class:`SchemaError` with the API's message."""
    if _type_depth(path) > MAX_TYPE_DEPTH:
        raise SchemaError(f"types cannot be nested more than {MAX_TYPE_DEPTH} levels deep", path)
    if not isinstance(data, Mapping):
        raise SchemaError("type must be a JSON object", path)
    for key in data:
        if key not in TYPE_KEYS:
            hint = ' (maybe "elementType"?)' if key == "elements" else ""
            raise SchemaError(f'unknown key "{key}"{hint}', (*path, str(key)))
    if "kind" not in data:
        raise SchemaError("missing 'kind' key", path)
    kind_name = data["kind"]
    if not isinstance(kind_name, str):
        raise SchemaError("kind must be a string", (*path, "kind"))
    try:
        kind = Kind(kind_name)
    except ValueError:
        raise SchemaError(f'kind "{kind_name}" is not valid', (*path, "kind")) from None
    _reject_foreign_parameters(kind, data, path)
    parser = _KIND_PARSERS.get(kind)
    return parser(data, path) if parser else Type(kind)


def _type_depth(path: JsonPath) -> int:
    """How many types enclose the one at ``path``: each nested type sits under one of these keys."""
    return sum(1 for step in path if step in ("type", "elementType"))


def _reject_foreign_parameters(kind: Kind, data: Mapping[str, Any], path: JsonPath) -> None:
    checks = (
        ("maxBytes", kind is Kind.STRING, "unexpected length in bytes for non-string type"),
        ("maxLength", kind is Kind.STRING, "unexpected length in characters for non-string type"),
        ("pattern", kind is Kind.STRING, "unexpected pattern for non-string type"),
        ("values", kind is Kind.STRING, "unexpected values for non-string type"),
        ("bitSize", kind in (Kind.INT, Kind.FLOAT), "unexpected bit size for non-int/float type"),
        ("unsigned", kind is Kind.INT, "unexpected unsigned for non-int type"),
        ("real", kind is Kind.FLOAT, "unexpected real for non-float type"),
        ("minimum", kind in NUMERIC_KINDS, "unexpected minimum for non-number type"),
        ("maximum", kind in NUMERIC_KINDS, "unexpected maximum for non-number type"),
        ("precision", kind is Kind.DECIMAL, "unexpected precision for non-decimal type"),
        ("scale", kind is Kind.DECIMAL, "unexpected scale for non-decimal type"),
        (
            "elementType",
            kind in (Kind.ARRAY, Kind.MAP),
            "unexpected element type for non-array and non-map type",
        ),
        ("minElements", kind is Kind.ARRAY, "unexpected minimum elements for non-array type"),
        ("maxElements", kind is Kind.ARRAY, "unexpected maximum elements for non-array type"),
        ("uniqueElements", kind is Kind.ARRAY, "unexpected unique elements for non-array type"),
        ("properties", kind is Kind.OBJECT, "unexpected properties for non-object type"),
    )
    for key, allowed, message in checks:
        if key in data and not allowed:
            raise SchemaError(message, (*path, key))


def _int_param(data: Mapping[str, Any], key: str, path: JsonPath, low: int, high: int) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError(f"{key} must be an integer", (*path, key))
    if not low <= value <= high:
        raise SchemaError(f"{key} must be in the range [{low}, {high}]", (*path, key))
    return value


def _bool_param(data: Mapping[str, Any], key: str, path: JsonPath) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise SchemaError(f"{key} must be a boolean", (*path, key))
    return value


def _text(value: Any, what: str, path: JsonPath) -> str:
    """A string member: valid text without NUL, NFC-normalised as the API does."""
    if not isinstance(value, str):
        raise SchemaError(f"{what} must be a string", path)
    if "\x00" in value:
        raise SchemaError(f"{what} contains the NUL byte", path)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SchemaError(f"{what} contains invalid UTF-8 encoded characters", path) from None
    return unicodedata.normalize("NFC", value)


def _parse_string(data: Mapping[str, Any], path: JsonPath) -> Type:
    max_length = max_bytes = None
    if "maxLength" in data:
        max_length = _int_param(data, "maxLength", path, 1, MAX_STRING_LIMIT)
    if "maxBytes" in data:
        max_bytes = _int_param(data, "maxBytes", path, 1, MAX_STRING_LIMIT)
    if "pattern" in data and "values" in data:
        raise SchemaError("pattern and values cannot be used together", path)
    pattern = None
    if "pattern" in data:
        pattern = _text(data["pattern"], "pattern", (*path, "pattern"))
        try:
            re.compile(pattern)
        except re.error as err:
            raise SchemaError(f"invalid pattern: {err}", (*path, "pattern")) from None
        except (OverflowError, RecursionError):
            # Huge repetition counts and very deep groups fail outside re.error.
            raise SchemaError("invalid pattern: too complex", (*path, "pattern")) from None
    values = None
    if "values" in data:
        raw = data["values"]
        if not isinstance(raw, list):
            raise SchemaError("values must be an array of strings", (*path, "values"))
        if not raw:
            raise SchemaError("invalid empty values", (*path, "values"))
        values = tuple(_text(v, "value", (*path, "values", i)) for i, v in enumerate(raw))
        if len(set(values)) != len(values):
            raise SchemaError("values cannot contain repeated values", (*path, "values"))
    return Type(
        Kind.STRING, max_length=max_length, max_bytes=max_bytes, pattern=pattern, values=values
    )


# The JSON number grammar, for bounds written as strings (how wide decimals are emitted).
_JSON_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


def _parse_bound(t: Type, data: Mapping[str, Any], key: str, path: JsonPath) -> Number | None:
    if key not in data:
        return None
    where = (*path, key)
    number = _bound_as_decimal(data[key], key, where)
    low, high = default_range(t)
    if t.kind is Kind.FLOAT:
        value = float(number)
        if not low <= value <= high:
            raise SchemaError(f"{key} {format_number(value)} is out of range for {t}", where)
        return value
    if t.kind is Kind.INT and _fraction_digits(number) > 0:
        raise SchemaError(f"{key} must be an integer", where)
    if t.kind is Kind.DECIMAL and _fraction_digits(number) > t.scale:
        raise SchemaError(f"{key} has more than {t.scale} decimal digits", where)
    # Range first: converting an absurd exponent such as 1e999999999 to int would never finish.
    if not low <= number <= high:
        raise SchemaError(f"{key} {format_number(number)} is out of range for {t}", where)
    return int(number) if t.kind is Kind.INT else number


def _bound_as_decimal(raw: Any, key: str, where: JsonPath) -> Decimal:
    """A bound exactly as written: a JSON number, or a string holding one."""
    is_number = isinstance(raw, int | float | Decimal) and not isinstance(raw, bool)
    if not is_number and not (isinstance(raw, str) and _JSON_NUMBER_RE.match(raw)):
        raise SchemaError(f"{key} must be a number", where)
    if isinstance(raw, int):
        return Decimal(raw)  # not via str(): Python refuses to print ints over 4300 digits
    try:
        # repr() is the shortest text that reads back as the same float: 0.1, not its binary value.
        number = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
    except InvalidOperation:  # an exponent beyond what Decimal can hold
        raise SchemaError(f"{key} must be a finite number", where) from None
    if not number.is_finite():
        raise SchemaError(f"{key} must be a finite number", where)
    return number


def _fraction_digits(number: Decimal) -> int:
    """Digits after the decimal point once trailing zeros are dropped: 1.50 has one, 1E+3 none."""
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int), "only finite numbers get here"
    significant = "".join(map(str, digits)).rstrip("0")
    if not significant:
        return 0
    return max(0, -(exponent + len(digits) - len(significant)))


def _with_bounds(t: Type, data: Mapping[str, Any], path: JsonPath) -> Type:
    minimum = _parse_bound(t, data, "minimum", path)
    maximum = _parse_bound(t, data, "maximum", path)
    low, high = default_range(t)
    if minimum is not None and maximum is not None and maximum < minimum:
        raise SchemaError("maximum cannot be less than minimum", (*path, "maximum"))
    # Bounds equal to the full range are the defaults: dropping them keeps the form canonical.
    return replace(
        t,
        minimum=None if minimum == low else minimum,
        maximum=None if maximum == high else maximum,
    )


def _bit_size(data: Mapping[str, Any], path: JsonPath, allowed: tuple[int, ...]) -> int:
    if "bitSize" not in data:
        raise SchemaError("missing 'bitSize' key", path)
    size = data["bitSize"]
    if isinstance(size, bool) or not isinstance(size, int) or size not in allowed:
        sizes = ", ".join(map(str, allowed))
        raise SchemaError(f"bitSize must be one of {sizes}", (*path, "bitSize"))
    return size


def _parse_int(data: Mapping[str, Any], path: JsonPath) -> Type:
    t = Type(
        Kind.INT,
        bit_size=_bit_size(data, path, INT_BIT_SIZES),
        unsigned=_bool_param(data, "unsigned", path),
    )
    return _with_bounds(t, data, path)


def _parse_float(data: Mapping[str, Any], path: JsonPath) -> Type:
    t = Type(
        Kind.FLOAT,
        bit_size=_bit_size(data, path, FLOAT_BIT_SIZES),
        real=_bool_param(data, "real", path),
    )
    return _with_bounds(t, data, path)


def _parse_decimal(data: Mapping[str, Any], path: JsonPath) -> Type:
    if "precision" not in data:
        raise SchemaError("missing precision", path)
    precision = _int_param(data, "precision", path, 1, MAX_PRECISION)
    scale = _int_param(data, "scale", path, 0, MAX_SCALE) if "scale" in data else 0
    if scale > precision:
        raise SchemaError("scale cannot be greater tha precision", (*path, "scale"))
    return _with_bounds(Type(Kind.DECIMAL, precision=precision, scale=scale), data, path)


def _element_type(data: Mapping[str, Any], path: JsonPath) -> Type:
    if "elementType" not in data or data["elementType"] is None:
        raise SchemaError("missing element type", path)
    return parse_type(data["elementType"], (*path, "elementType"))


def _parse_array(data: Mapping[str, Any], path: JsonPath) -> Type:
    element = _element_type(data, path)
    min_elements = max_elements = None
    if "minElements" in data:
        min_elements = _int_param(data, "minElements", path, 0, MAX_ELEMENTS_LIMIT)
    if "maxElements" in data:
        max_elements = _int_param(data, "maxElements", path, 0, MAX_ELEMENTS_LIMIT)
    if min_elements is not None and max_elements is not None and max_elements < min_elements:
        raise SchemaError("maxElements cannot be less than minElements", (*path, "maxElements"))
    unique = _bool_param(data, "uniqueElements", path)
    if unique and (element.kind in CONTAINER_KINDS or element.kind is Kind.JSON):
        raise SchemaError(
            f"uniqueElements cannot be used with elements of type {element.kind}",
            (*path, "uniqueElements"),
        )
    return Type(
        Kind.ARRAY,
        element_type=element,
        min_elements=min_elements or None,
        max_elements=max_elements,
        unique_elements=unique,
    )


def _parse_map(data: Mapping[str, Any], path: JsonPath) -> Type:
    return Type(Kind.MAP, element_type=_element_type(data, path))


def _parse_object(data: Mapping[str, Any], path: JsonPath) -> Type:
    if "properties" not in data or data["properties"] is None:
        raise SchemaError("missing object properties", path)
    return object_type(*parse_properties(data["properties"], (*path, "properties")))


def parse_properties(data: Any, path: JsonPath) -> list[Property]:
    if not isinstance(data, list):
        raise SchemaError("properties must be an array", path)
    if not data:
        raise SchemaError("invalid empty properties", path)
    properties: list[Property] = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        prop = parse_property(item, (*path, index))
        if prop.name in seen:
            raise SchemaError(f'repeated property name "{prop.name}"', (*path, index, "name"))
        seen.add(prop.name)
        properties.append(prop)
    return properties


def parse_property(data: Any, path: JsonPath) -> Property:
    if not isinstance(data, Mapping):
        raise SchemaError("property must be a JSON object", path)
    for key in data:
        if key not in PROPERTY_KEYS:
            raise SchemaError(f"unknown property '{key}'", (*path, str(key)))
    if "name" not in data:
        raise SchemaError("missing property name", path)
    name = _text(data["name"], "property name", (*path, "name"))
    if not is_valid_property_name(name):
        raise SchemaError(f'property name "{name}" is not valid', (*path, "name"))
    if data.get("type") is None:
        raise SchemaError("missing property type", path)
    flags = {
        attr: _bool_param(data, key, path) for key, attr in _PROPERTY_FLAGS.items() if key in data
    }
    return Property(
        name=name,
        type=parse_type(data["type"], (*path, "type")),
        prefilled=_text(data.get("prefilled", ""), "prefilled", (*path, "prefilled")),
        description=_text(data.get("description", ""), "description", (*path, "description")),
        **flags,
    )


_KIND_PARSERS = {
    Kind.STRING: _parse_string,
    Kind.INT: _parse_int,
    Kind.FLOAT: _parse_float,
    Kind.DECIMAL: _parse_decimal,
    Kind.ARRAY: _parse_array,
    Kind.MAP: _parse_map,
    Kind.OBJECT: _parse_object,
}


# ---------------------------------------------------------------------------------------------
# Serialization
# ---------------------------------------------------------------------------------------------


def json_number(value: Number) -> int | float | str:
    """A bound as JSON: a number, or a decimal string when a float would lose digits."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    return value


def format_number(value: Number) -> str:
    """A number as messages show it: positional (``1000``, not ``1E+3``) within any decimal."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, Decimal):
        # Positional up to the widest decimal(76, 37); beyond that an exponent keeps it short.
        return format(value, "f") if -80 < value.adjusted() < 80 else format(value, ".6e")
    return str(value)


def type_to_json(t: Type) -> dict[str, Any]:
    """The canonical JSON of a type: ``kind`` first, then only the non-default parameters."""
    out: dict[str, Any] = {"kind": str(t.kind)}
    match t.kind:
        case Kind.STRING:
            if t.max_length is not None:
                out["maxLength"] = t.max_length
            if t.max_bytes is not None:
                out["maxBytes"] = t.max_bytes
            if t.pattern is not None:
                out["pattern"] = t.pattern
            if t.values is not None:
                out["values"] = list(t.values)
        case Kind.INT | Kind.FLOAT | Kind.DECIMAL:
            if t.kind is Kind.DECIMAL:
                out["precision"] = t.precision
                if t.scale:
                    out["scale"] = t.scale
            else:
                out["bitSize"] = t.bit_size
            if t.unsigned:
                out["unsigned"] = True
            if t.real:
                out["real"] = True
            if t.minimum is not None:
                out["minimum"] = json_number(t.minimum)
            if t.maximum is not None:
                out["maximum"] = json_number(t.maximum)
        case Kind.ARRAY:
            assert t.element_type is not None
            out["elementType"] = type_to_json(t.element_type)
            if t.min_elements:
                out["minElements"] = t.min_elements
            if t.max_elements is not None:
                out["maxElements"] = t.max_elements
            if t.unique_elements:
                out["uniqueElements"] = True
        case Kind.MAP:
            assert t.element_type is not None
            out["elementType"] = type_to_json(t.element_type)
        case Kind.OBJECT:
            out["properties"] = [property_to_json(p) for p in t.properties]
        case _:
            pass
    return out


def property_to_json(p: Property) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name}
    if p.prefilled:
        out["prefilled"] = p.prefilled
    out["type"] = type_to_json(p.type)
    for key, attr in _PROPERTY_FLAGS.items():
        if getattr(p, attr):
            out[key] = True
    out["description"] = p.description
    return out


def describe(t: Type) -> str:
    """A type with every parameter spelled out, for messages that compare two types."""
    params = {k: v for k, v in type_to_json(t).items() if k not in ("kind", "properties")}
    if "elementType" in params:
        assert t.element_type is not None
        params["elementType"] = describe(t.element_type)
    if not params:
        return str(t.kind)
    inner = ", ".join(f"{k} {v!r}" if isinstance(v, str) else f"{k} {v}" for k, v in params.items())
    return f"{t.kind}({inner})"
