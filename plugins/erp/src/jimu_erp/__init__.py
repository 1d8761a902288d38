"""Jimu erp plugin (not built yet): ERP connector: order sync with retries, no lost orders.

The package exists so the workspace layout is final; it registers no
``jimu.plugins`` entry point until it has features to offer.
"""
