"""Backup and restore: a note seeded through the UI before the backup is deleted through the
UI after it (`mutate`), and is back after the restore."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from webapp_ui import add_note, notes

NOTE = "seeded through the UI before the backup"


@pytest.mark.phase("pre")
def test_seed_a_note_before_the_backup(admin: Page) -> None:
    add_note(admin, NOTE)


@pytest.mark.phase("mutate")
def test_delete_every_note_through_the_ui(admin: Page) -> None:
    admin.goto("/ui")
    while admin.locator("#notes .note").count() > 0:
        before = admin.locator("#notes .note").count()
        admin.get_by_role("button", name="Delete").first.click()
        expect(admin.locator("#notes .note")).to_have_count(before - 1)
    expect(admin.locator("#empty")).to_have_text("No notes.")


def test_the_restore_brings_the_note_back(admin: Page) -> None:
    shown = notes(admin)
    assert NOTE in shown, shown
