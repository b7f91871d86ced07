"""The upgrade keeps the site's content volume."""

from __future__ import annotations

import pytest
from ccci_harness import App, AppHttp

MARKER = "/markers/upgrade.txt"


@pytest.mark.phase("pre")
def test_put_a_marker_on_the_previous_version(http: AppHttp) -> None:
    assert http.put(MARKER, data=b"before the upgrade").status_code in (201, 204)


def test_the_marker_survives_the_upgrade(http: AppHttp, app: App) -> None:
    response = app.wait_for(lambda: http.get(MARKER), timeout=20, what=MARKER)
    assert response.status_code == 200
    assert response.text == "before the upgrade"
