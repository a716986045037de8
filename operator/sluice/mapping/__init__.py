"""The mapping expression language of ``transformation.mapping``."""
