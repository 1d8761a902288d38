"""The demo store of ``jimu demo``."""
