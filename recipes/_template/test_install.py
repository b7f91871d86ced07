"""Checks of a fresh install. Replace with what matters for the recipe."""

from __future__ import annotations

from ccci_harness import AppHttp
from playwright.sync_api import Page, expect


def test_the_app_answers(http: AppHttp) -> None:
    assert http.get("/").status_code < 500


def test_the_home_page_renders(page: Page) -> None:
    page.goto("/")
    expect(page.locator("body")).not_to_be_empty()
