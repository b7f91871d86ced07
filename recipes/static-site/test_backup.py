"""Backup and restore bring a deleted file back."""

from __future__ import annotations

import pytest
from ccci_harness import AppHttp

MARKER = "/markers/backup.txt"


@pytest.mark.phase("pre")
def test_put_a_marker_before_the_backup(http: AppHttp) -> None:
    assert http.put(MARKER, data=b"backed up").status_code in (201, 204)


@pytest.mark.phase("mutate")
def test_delete_the_marker(http: AppHttp) -> None:
    assert http.delete(MARKER).status_code == 204
    assert http.get(MARKER).status_code == 404


def test_the_restore_brings_the_marker_back(http: AppHttp) -> None:
    response = http.get(MARKER)
    assert response.status_code == 200
    assert response.text == "backed up"
