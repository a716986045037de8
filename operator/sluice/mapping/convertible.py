"""Which types a mapping may convert into which (the conversion matrix of the mapping language)."""

from __future__ import annotations

from sluice.model.types import Kind, Type

_SCALAR_TARGETS: dict[Kind, frozenset[Kind]] = {
    Kind.STRING: frozenset(
        {
            Kind.STRING,
            Kind.BOOLEAN,
            Kind.INT,
            Kind.FLOAT,
            Kind.DECIMAL,
            Kind.DATETIME,
            Kind.DATE,
            Kind.TIME,
            Kind.YEAR,
            Kind.UUID,
            Kind.IP,
        }
    ),
    Kind.BOOLEAN: frozenset({Kind.STRING, Kind.BOOLEAN}),
    Kind.INT: frozenset({Kind.STRING, Kind.INT, Kind.FLOAT, Kind.DECIMAL, Kind.YEAR}),
    Kind.FLOAT: frozenset({Kind.STRING, Kind.INT, Kind.FLOAT, Kind.DECIMAL}),
    Kind.DECIMAL: frozenset({Kind.STRING, Kind.INT, Kind.FLOAT, Kind.DECIMAL}),
    Kind.DATETIME: frozenset({Kind.STRING, Kind.DATETIME, Kind.DATE, Kind.TIME}),
    Kind.DATE: frozenset({Kind.STRING, Kind.DATETIME, Kind.DATE}),
    Kind.TIME: frozenset({Kind.STRING, Kind.TIME}),
    Kind.YEAR: frozenset({Kind.STRING, Kind.INT, Kind.YEAR}),
    Kind.UUID: frozenset({Kind.STRING, Kind.UUID}),
    Kind.IP: frozenset({Kind.STRING, Kind.IP}),
}


def _is_int8(t: Type) -> bool:
    return t.kind is Kind.INT and t.bit_size == 8


def convertible(source: Type, target: Type) -> bool:
    """Whether a value of ``source`` type can be converted to ``target`` at run time."""
    if Kind.JSON in (source.kind, target.kind):
        return True
    # Booleans and 8-bit integers stand for each other (0/1), nothing wider.
    if source.kind is Kind.BOOLEAN and _is_int8(target):
        return True
    if target.kind is Kind.BOOLEAN and _is_int8(source):
        return True
    if source.kind in _SCALAR_TARGETS:
        return target.kind in _SCALAR_TARGETS[source.kind]
    match source.kind, target.kind:
        case (Kind.ARRAY, Kind.ARRAY) | (Kind.MAP, Kind.MAP):
            assert source.element_type and target.element_type
            return convertible(source.element_type, target.element_type)
        case Kind.OBJECT, Kind.OBJECT:
            shared = [(p, target.property(p.name)) for p in source.properties]
            pairs = [(p.type, q.type) for p, q in shared if q is not None]
            return bool(pairs) and all(convertible(s, t) for s, t in pairs)
        case Kind.OBJECT, Kind.MAP:
            assert target.element_type is not None
            return all(convertible(p.type, target.element_type) for p in source.properties)
        case Kind.MAP, Kind.OBJECT:
            assert source.element_type is not None
            return all(convertible(source.element_type, p.type) for p in target.properties)
    return False
