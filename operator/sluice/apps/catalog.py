"""The application connectors Sluice ships, by connector code.

A Connection names its application by one of these codes; any other code is refused with the
API's ``connector does not exist``.
"""

from __future__ import annotations

from types import MappingProxyType

#: Connector code → the application's display name.
CONNECTORS = MappingProxyType(
    {
        "brevo": "Brevo",
        "hubspot": "HubSpot",
        "klaviyo": "Klaviyo",
        "mailchimp": "Mailchimp",
        "mailerlite": "MailerLite",
    }
)
