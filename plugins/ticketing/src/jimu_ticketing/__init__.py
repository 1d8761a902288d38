"""Jimu ticketing plugin (not built yet): Ticketing: dispatch rules, SLAs, satisfaction surveys.

The package exists so the workspace layout is final; it registers no
``jimu.plugins`` entry point until it has features to offer.
"""
