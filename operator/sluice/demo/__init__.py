"""The demo: seeded demo profiles and the ``make demo`` / ``make serve`` session."""
