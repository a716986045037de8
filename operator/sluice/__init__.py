"""Sluice: a Kubernetes operator for reverse ETL."""

__version__ = "0.1.0"
