"""A fresh install serves its site, in the browser too."""

from __future__ import annotations

from ccci_harness import App, AppHttp
from playwright.sync_api import Page


def test_the_health_endpoint_answers(http: AppHttp) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.text.strip() == "ok"


def test_the_footer_names_the_domain_in_the_browser(page: Page, app: App) -> None:
    page.goto("/footer.html")
    assert app.domain in page.locator("footer").inner_text()
