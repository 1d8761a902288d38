"""Jimu loyalty plugin (not built yet): Loyalty and points mall: tiers, earning rules, ledger, redemption with stock.

The package exists so the workspace layout is final; it registers no
``jimu.plugins`` entry point until it has features to offer.
"""
