"""Browser helpers of the webapp-pg suite: logging in as the admin and using the notes UI.

A module next to the tests: the job puts the suite's directory on the import path."""

from __future__ import annotations

from ccci_harness import App
from playwright.sync_api import Page, expect


def log_in(page: Page, app: App) -> None:
    """Logs in through the login form with the app's generated admin password."""
    page.goto("/login")
    page.get_by_label("Password").fill(app.secret("db_password"))
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Notes")).to_be_visible()


def notes(page: Page) -> list[str]:
    """The notes the UI lists."""
    page.goto("/ui")
    return page.locator("#notes .note").all_inner_texts()


def add_note(page: Page, text: str) -> None:
    """Adds a note through the form, unless the UI lists it already (a retried step)."""
    if text in notes(page):
        return
    page.get_by_label("New note").fill(text)
    page.get_by_role("button", name="Add").click()
    expect(page.locator("#notes .note", has_text=text)).to_be_visible()
