"""Fixtures of the webapp-pg suite."""

from __future__ import annotations

import pytest
from ccci_harness import App
from playwright.sync_api import Page
from webapp_ui import log_in


@pytest.fixture
def admin(page: Page, app: App) -> Page:
    """A page logged in as the admin (with the app's generated password)."""
    log_in(page, app)
    return page
