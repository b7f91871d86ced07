"""The upgrade: a note seeded through the UI of the previous version is shown by the new one."""

from __future__ import annotations

import pytest
from ccci_harness import App
from playwright.sync_api import Page
from webapp_ui import add_note, notes

NOTE = "seeded through the UI before the upgrade"


@pytest.mark.phase("pre")
def test_seed_a_note_on_the_previous_version(admin: Page, app: App) -> None:
    assert app.previous_version is not None
    assert app.version == app.previous_version, "pre runs on the previous version"
    add_note(admin, NOTE)


def test_the_note_survives_the_upgrade(admin: Page, app: App) -> None:
    assert app.version != app.previous_version
    assert NOTE in notes(admin)
