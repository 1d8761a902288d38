"""Jimu reports plugin (not built yet): KPI reports: LTV, repurchase rate, AOV, churn, funnels, dashboards.

The package exists so the workspace layout is final; it registers no
``jimu.plugins`` entry point until it has features to offer.
"""
