"""The read-only REST API: ``GET /v1/pipelines``, ``/v1/pipelines/{id}`` and its runs."""

from sluice.api.app import create_app
from sluice.api.server import serve

__all__ = ["create_app", "serve"]
