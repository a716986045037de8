"""Contact property definitions of the HubSpot twin, and how a written value becomes the text
HubSpot stores.

HubSpot keeps every property value as a string. Writes may send JSON strings, numbers or
booleans; the value is checked against the property's ``type`` and turned into its stored text
(booleans ``"true"``/``"false"``, dates ``YYYY-MM-DD``, datetimes ISO 8601 in UTC with
milliseconds, emails lower-cased). A value that does not fit is refused with the error record
HubSpot puts in ``Property values were not valid: [...]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

#: The portal id the twin reports in error records.
PORTAL_ID = 62515

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Option:
    label: str
    value: str
    display_order: int = 0
    hidden: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "displayOrder": self.display_order,
            "hidden": self.hidden,
        }


@dataclass(frozen=True, slots=True)
class PropertyDefinition:
    """One contact property as ``GET /crm/v3/properties/contacts`` lists it.

    ``type`` is HubSpot's data type (``string``, ``number``, ``bool``, ``enumeration``,
    ``date``, ``datetime``, ``phone_number``); ``field_type`` its form field (``text``,
    ``textarea``, ``number``, ``booleancheckbox``, ``select``, ``radio``, ``checkbox``,
    ``date``, ``phonenumber``, ``calculation_equation``...). ``read_only`` is HubSpot's
    ``modificationMetadata.readOnlyValue``. ``unique`` says the twin refuses two contacts
    with the same value: true for ``email`` although HubSpot lists email with
    ``hasUniqueValue: false`` (its uniqueness is enforced apart), and for custom properties
    declared with ``hasUniqueValue: true``.
    """

    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    options: tuple[Option, ...] = ()
    read_only: bool = False
    read_only_definition: bool = True
    hidden: bool = False
    calculated: bool = False
    has_unique_value: bool = False
    unique: bool = False
    hubspot_defined: bool = True
    description: str = ""
    display_order: int = -1
    option_values: frozenset[str] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        object.__setattr__(self, "option_values", frozenset(o.value for o in self.options))

    def to_json(self) -> dict[str, Any]:
        created = "2019-08-06T02:43:14.491Z"
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [o.to_json() for o in self.options],
            "createdAt": created,
            "updatedAt": created,
            "displayOrder": self.display_order,
            "calculated": self.calculated,
            "externalOptions": False,
            "archived": False,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "formField": not (self.read_only or self.hidden),
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.read_only_definition,
                "readOnlyValue": self.read_only,
            },
        }
        if self.hubspot_defined:
            body["hubspotDefined"] = True
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> PropertyDefinition:
        """A custom property in the shape HubSpot's property API takes (``name``, ``label``,
        ``type``, ``fieldType``, ``groupName``, ``options``, ``hasUniqueValue``...)."""
        options = tuple(
            Option(
                label=str(o.get("label", o["value"])),
                value=str(o["value"]),
                display_order=int(o.get("displayOrder", i)),
                hidden=bool(o.get("hidden", False)),
            )
            for i, o in enumerate(body.get("options") or ())
        )
        unique = bool(body.get("hasUniqueValue", False))
        metadata = body.get("modificationMetadata") or {}
        return cls(
            name=str(body["name"]),
            label=str(body.get("label", body["name"])),
            type=str(body.get("type", "string")),
            field_type=str(body.get("fieldType", "text")),
            group_name=str(body.get("groupName", "contactinformation")),
            options=options,
            read_only=bool(metadata.get("readOnlyValue", False)),
            read_only_definition=False,
            hidden=bool(body.get("hidden", False)),
            has_unique_value=unique,
            unique=unique,
            hubspot_defined=False,
            description=str(body.get("description", "")),
        )


def _options(*pairs: tuple[str, str]) -> tuple[Option, ...]:
    return tuple(Option(label, value, i) for i, (label, value) in enumerate(pairs))


def _p(
    name: str, label: str, type_: str, field_type: str, group: str, **kw: Any
) -> PropertyDefinition:
    return PropertyDefinition(name, label, type_, field_type, group, **kw)


_LIFECYCLE = _options(
    ("Subscriber", "subscriber"),
    ("Lead", "lead"),
    ("Marketing Qualified Lead", "marketingqualifiedlead"),
    ("Sales Qualified Lead", "salesqualifiedlead"),
    ("Opportunity", "opportunity"),
    ("Customer", "customer"),
    ("Evangelist", "evangelist"),
    ("Other", "other"),
)
_LANGUAGES = _options(
    ("English", "en"),
    ("French", "fr"),
    ("German", "de"),
    ("Spanish", "es"),
    ("Italian", "it"),
    ("Portuguese", "pt"),
    ("Japanese", "ja"),
    ("Dutch", "nl"),
)
_LEAD_STATUS = _options(
    ("New", "NEW"),
    ("Open", "OPEN"),
    ("In Progress", "IN_PROGRESS"),
    ("Open Deal", "OPEN_DEAL"),
    ("Unqualified", "UNQUALIFIED"),
    ("Attempted to Contact", "ATTEMPTED_TO_CONTACT"),
    ("Connected", "CONNECTED"),
    ("Bad Timing", "BAD_TIMING"),
)
_YES_NO = _options(("Yes", "true"), ("No", "false"))

_CI = "contactinformation"
_EI = "emailinformation"
_SP = "sales_properties"
_AI = "analyticsinformation"
_CA = "conversioninformation"

#: The contact properties every twin starts with: a realistic slice of HubSpot's defaults.
DEFAULT_PROPERTIES: tuple[PropertyDefinition, ...] = (
    _p("email", "Email", "string", "text", _CI, unique=True),
    _p("firstname", "First Name", "string", "text", _CI),
    _p("lastname", "Last Name", "string", "text", _CI),
    _p("phone", "Phone Number", "string", "phonenumber", _CI),
    _p("mobilephone", "Mobile Phone Number", "string", "phonenumber", _CI),
    _p("fax", "Fax Number", "string", "phonenumber", _CI),
    _p("company", "Company Name", "string", "text", _CI),
    _p("website", "Website URL", "string", "text", _CI),
    _p("address", "Street Address", "string", "text", _CI),
    _p("city", "City", "string", "text", _CI),
    _p("state", "State/Region", "string", "text", _CI),
    _p("zip", "Postal Code", "string", "text", _CI),
    _p("country", "Country/Region", "string", "text", _CI),
    _p("jobtitle", "Job Title", "string", "text", _CI),
    _p("industry", "Industry", "string", "text", _CI),
    _p("annualrevenue", "Annual Revenue", "string", "text", _CI),
    _p("date_of_birth", "Date of birth", "date", "date", _CI),
    _p("numemployees", "Number of Employees", "number", "number", _CI),
    _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", _CI, options=_LIFECYCLE),
    _p("hs_lead_status", "Lead Status", "enumeration", "radio", _SP, options=_LEAD_STATUS),
    _p("hs_language", "Preferred language", "enumeration", "select", _CI, options=_LANGUAGES),
    _p(
        "hs_email_optout",
        "Unsubscribed from all email",
        "bool",
        "booleancheckbox",
        _EI,
        options=_YES_NO,
    ),
    _p("hs_email_bounce", "Marketing emails bounced", "number", "number", _EI, read_only=True),
    _p("hs_object_id", "Record ID", "number", "number", _CI, read_only=True),
    _p("createdate", "Create Date", "datetime", "date", _CI, read_only=True),
    _p("lastmodifieddate", "Last Modified Date", "datetime", "date", _CI, read_only=True),
    _p(
        "hs_analytics_num_page_views",
        "Number of Pageviews",
        "number",
        "number",
        _AI,
        read_only=True,
        calculated=True,
    ),
    _p(
        "hs_analytics_source",
        "Original Traffic Source",
        "enumeration",
        "select",
        _AI,
        read_only=True,
        options=_options(
            ("Organic Search", "ORGANIC_SEARCH"), ("Direct Traffic", "DIRECT_TRAFFIC")
        ),
    ),
    _p(
        "hs_email_domain",
        "Email Domain",
        "string",
        "text",
        _CI,
        read_only=True,
        calculated=True,
        hidden=True,
    ),
    _p(
        "hs_all_contact_vids",
        "All vids for a contact",
        "enumeration",
        "checkbox",
        _CI,
        read_only=True,
        hidden=True,
    ),
    _p("first_conversion_date", "First Conversion Date", "datetime", "date", _CA, read_only=True),
    _p("recent_conversion_date", "Recent Conversion Date", "datetime", "date", _CA, read_only=True),
)

#: Properties returned when a read names none (HubSpot's documented default set for contacts).
DEFAULT_RETURNED = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)


class InvalidValue(Exception):  # noqa: N818 (a value HubSpot refuses, not a crash)
    """A value HubSpot refuses, with HubSpot's error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid_record(name: str, code: str, message: str) -> dict[str, Any]:
    """One entry of the list in ``Property values were not valid: [...]``."""
    return {
        "isValid": False,
        "message": message,
        "error": code,
        "name": name,
        "localizedErrorMessage": message,
        "portalId": PORTAL_ID,
    }


def format_datetime_ms(ms: int) -> str:
    """Epoch milliseconds → ``2019-10-30T03:30:17.883Z``."""
    seconds, millis = divmod(ms, 1000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{millis:03d}Z"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise InvalidValue("INVALID_PROPERTY_VALUE", f"{value!r} is not a valid property value")


def _string(prop: PropertyDefinition, value: Any) -> str:
    return value if isinstance(value, str) else _text(value)


def _email(prop: PropertyDefinition, value: Any) -> str:
    text = _text(value).strip()
    if not _EMAIL.match(text):
        raise InvalidValue("INVALID_EMAIL", f"Email address {text} is invalid")
    return text.lower()


def _number(prop: PropertyDefinition, value: Any) -> str:
    if isinstance(value, bool):
        raise InvalidValue("INVALID_DECIMAL", f"{_text(value)} was not a valid number.")
    if isinstance(value, int | float):
        return _text(value)
    text = _text(value).strip()
    try:
        number = float(text)
    except ValueError:
        raise InvalidValue("INVALID_DECIMAL", f"{text} was not a valid number.") from None
    if math.isnan(number) or math.isinf(number):
        raise InvalidValue("INVALID_DECIMAL", f"{text} was not a valid number.")
    return text


def _bool(prop: PropertyDefinition, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = _text(value).strip().lower()
    if text in ("true", "false"):
        return text
    raise InvalidValue("INVALID_BOOLEAN", f"{_text(value)} was not a valid boolean.")


def _enumeration(prop: PropertyDefinition, value: Any) -> str:
    text = _text(value)
    parts = text.split(";") if prop.field_type == "checkbox" else [text]
    for part in parts:
        if part not in prop.option_values:
            allowed = ", ".join(o.value for o in prop.options)
            raise InvalidValue(
                "INVALID_OPTION", f"{part} was not one of the allowed options: [{allowed}]"
            )
    return text


def _epoch_ms(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _date(prop: PropertyDefinition, value: Any) -> str:
    ms = _epoch_ms(value)
    if ms is not None:
        if ms % _DAY_MS:
            at = format_datetime_ms(ms)[11:-1]
            raise InvalidValue("INVALID_DATE", f"{ms} is at {at} UTC, not midnight!")
        return (_EPOCH_DAY + timedelta(days=ms // _DAY_MS)).isoformat()
    text = _text(value).strip()
    if _DATE.match(text):
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            pass
    raise InvalidValue("INVALID_DATE", f"{text} was not a valid date.")


def _datetime(prop: PropertyDefinition, value: Any) -> str:
    ms = _epoch_ms(value)
    if ms is not None:
        return format_datetime_ms(ms)
    text = _text(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValue("INVALID_DATETIME", f"{text} was not a valid datetime.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    delta = parsed - _EPOCH
    return format_datetime_ms(
        delta.days * _DAY_MS + delta.seconds * 1000 + delta.microseconds // 1000
    )


Normalizer = Callable[[PropertyDefinition, Any], str]

_BY_TYPE: dict[str, Normalizer] = {
    "string": _string,
    "phone_number": _string,
    "number": _number,
    "bool": _bool,
    "enumeration": _enumeration,
    "date": _date,
    "datetime": _datetime,
}


def normalizer_for(prop: PropertyDefinition) -> Normalizer:
    """How values written to ``prop`` are checked and turned into stored text."""
    if prop.name == "email":
        return _email
    return _BY_TYPE.get(prop.type, _string)


def index(properties: Iterable[PropertyDefinition]) -> dict[str, PropertyDefinition]:
    """Definitions by name; a later definition replaces an earlier one of the same name."""
    return {p.name: p for p in properties}
