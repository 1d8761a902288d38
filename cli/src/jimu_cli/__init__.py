"""The jimu command line."""
