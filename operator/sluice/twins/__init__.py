"""Loopback twins of the applications Sluice exports to: HTTP servers that speak an
application's real API, the only fakes the project allows.

``sluice.twins.hubspot`` holds the HubSpot twin (``HubSpotTwin``, ``serve``); it is imported
from there, not re-exported here, so that ``python -m sluice.twins.hubspot`` runs it cleanly.
"""
