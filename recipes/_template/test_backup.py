"""A backup brings back what a mutation removed. Fill in the recipe's own data."""

from __future__ import annotations

import pytest
from ccci_harness import AppHttp


@pytest.mark.phase("pre")
def test_seed_before_the_backup(http: AppHttp) -> None:
    assert http.get("/").status_code < 500


@pytest.mark.phase("mutate")
def test_change_the_data(http: AppHttp) -> None:
    # Delete or change what `pre` wrote, so the restore has something to bring back.
    assert http.get("/").status_code < 500


def test_the_restore_brings_it_back(http: AppHttp) -> None:
    assert http.get("/").status_code < 500
