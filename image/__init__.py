"""Sluice's container image: its definition (`build.py`), locks and OCI archive writer."""
