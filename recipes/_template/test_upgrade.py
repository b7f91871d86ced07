"""Data written before the upgrade is there after it. Fill in the recipe's own data."""

from __future__ import annotations

import pytest
from ccci_harness import App, AppHttp


@pytest.mark.phase("pre")
def test_seed_before_the_upgrade(http: AppHttp, app: App) -> None:
    # Runs on the previous version (app.version == app.previous_version). Make it idempotent:
    # a retried step runs it again.
    assert http.get("/").status_code < 500


def test_seeded_data_survives_the_upgrade(http: AppHttp) -> None:
    assert http.get("/").status_code < 500
