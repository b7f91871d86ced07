"""A fresh install: the API answers (to the harness' client and to any other), the login
refuses a wrong password, the admin logs in and creates a note through the form."""

from __future__ import annotations

import urllib.request

from ccci_harness import App, AppHttp
from ccci_harness.http import proxy_tls
from playwright.sync_api import Page, expect
from webapp_ui import add_note, notes


def test_the_api_lists_notes(http: AppHttp) -> None:
    response = http.get("/notes")
    assert response.status_code == 200
    assert isinstance(response.json(), list)


def test_any_client_reaches_the_app_at_its_url(app: App) -> None:
    # In proxy mode app.url is https://<domain>: the job's /etc/hosts sends it to the proxy.
    tls = proxy_tls(app.config.ca_file) if app.config.proxy_addr else None
    with urllib.request.urlopen(app.url + "/notes", context=tls, timeout=15) as response:
        assert response.status == 200


def test_the_ui_needs_a_login(http: AppHttp) -> None:
    response = http.get("/ui", allow_redirects=False)
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"


def test_a_wrong_password_is_refused(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong password.")


def test_the_admin_creates_a_note_through_the_form(admin: Page, app: App, http: AppHttp) -> None:
    add_note(admin, "written in the browser at install")
    assert "written in the browser at install" in notes(admin)
    assert "written in the browser at install" in http.get("/notes").json()
    assert app.stage == "install"
