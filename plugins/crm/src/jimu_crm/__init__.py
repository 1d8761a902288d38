"""Jimu crm plugin (not built yet): CRM: 360° customer view, tags, segments, RFM, lead assignment, follow-ups.

The package exists so the workspace layout is final; it registers no
``jimu.plugins`` entry point until it has features to offer.
"""
