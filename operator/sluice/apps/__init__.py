"""Application connectors: one module per application, behind one small interface."""
