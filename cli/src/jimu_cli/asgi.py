"""ASGI entry for ``jimu serve``: builds the app of the site named by ``JIMU_SITE``."""

from __future__ import annotations

import os

from litestar import Litestar

from jimu.http import create_app


def app_from_env() -> Litestar:
    """The app of the site folder in ``JIMU_SITE`` (set by ``jimu serve``)."""
    return create_app(os.environ.get("JIMU_SITE", "."))
