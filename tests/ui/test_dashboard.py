"""The dashboard in a real Chromium against a real `cc-ci serve`: the overview coloured by
state, the live log (growing without reload, in order, nothing repeated or lost across a
reconnect and a server restart, a 100,000-line log), operator-only cancel, the badge."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import requests
from playwright.sync_api import Page, expect

from .conftest import TOKEN, Server, screenshot
from .fixtures import all_passed, finished, pending, running, stage


def populate(server: Server) -> None:
    """Four recipes in four states, one run running and two queued."""
    for name in ("custom-html", "keycloak", "nextcloud", "wordpress"):
        server.recipe(name)
    server.run("custom-html-main-1", "custom-html", finished("Succeeded", all_passed()))
    server.facts(
        "custom-html-main-1",
        {
            "metadata": [
                {"key": "Category", "value": "Apps"},
                {"key": "Status", "value": "3, stable"},
                {"key": "Healthcheck", "value": "Yes"},
                {"key": "Backups", "value": "❶💚"},
                {"key": "Tests", "value": "❷💛"},
            ],
            "services": [{"name": "app", "healthcheck": True}],
            "recipeTests": True,
        },
    )
    server.run(
        "keycloak-main-1",
        "keycloak",
        finished(
            "Failed",
            [
                stage("install", "Passed"),
                stage(
                    "upgrade",
                    "Failed",
                    passed=1,
                    failed=1,
                    failing=["test_login_after_upgrade"],
                    message="1 test failed: test_login_after_upgrade: realm 'master' missing",
                ),
                stage("backup-restore", "Skipped", passed=0),
            ],
        ),
    )
    server.facts(
        "keycloak-main-1",
        {
            "metadata": [
                {"key": "Backups", "value": "Yes"},
                {"key": "Healthcheck", "value": "Yes"},
            ],
            "services": [
                {"name": "app", "healthcheck": True},
                {"name": "db", "healthcheck": False},
            ],
            "recipeTests": False,
        },
    )
    server.run("keycloak-pr7-c1", "keycloak", finished("Succeeded", all_passed()), pr=7)
    server.run("nextcloud-pr12-c5", "nextcloud", running(), pr=12)
    server.run("wordpress-pr3-c9", "wordpress", pending(1), pr=3)
    server.run("custom-html-pr4-c2", "custom-html", pending(2), pr=4)


def test_overview_lists_recipes_coloured_by_state(server: Server, page: Page) -> None:
    populate(server)
    page.goto(server.url + "/")
    rows = page.locator("#recipes tbody tr")
    expect(rows).to_have_count(4)
    classes = {
        rows.nth(i).get_attribute("data-recipe"): rows.nth(i).get_attribute("class")
        for i in range(4)
    }
    assert classes == {
        "custom-html": "passing",
        "keycloak": "failing",
        "nextcloud": "running",
        "wordpress": "running",
    }, classes
    colour = {
        name: page.locator(f'#recipes tr[data-recipe="{name}"] td').first.evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
        for name in ("custom-html", "keycloak", "nextcloud")
    }
    assert len(set(colour.values())) == 3, colour
    # The level of the passing recipe (all stages tested, healthchecks, honest README) and the
    # failing one (install passed, upgrade failed).
    expect(page.locator('#recipes tr[data-recipe="custom-html"] .level')).to_have_text("7")
    expect(page.locator('#recipes tr[data-recipe="keycloak"] .level')).to_have_text("2")
    # The API's Recipe.status.level is the same computation, with the same recorded facts.
    deadline = time.monotonic() + 10
    levels: dict[str, object] = {}
    while time.monotonic() < deadline:
        levels = {
            n: server.get("recipes", n)["status"].get("level") for n in ("custom-html", "keycloak")
        }
        if levels == {"custom-html": 7, "keycloak": 2}:
            break
        time.sleep(0.1)
    assert levels == {"custom-html": 7, "keycloak": 2}, levels
    # Running and queued on top, in queue order, with estimates.
    active = page.locator("#active tbody tr")
    expect(active).to_have_count(3)
    expect(active.nth(0)).to_contain_text("nextcloud-pr12-c5")
    expect(active.nth(1)).to_contain_text("#1")
    expect(active.nth(2)).to_contain_text("#2")
    expect(active.nth(2)).to_contain_text("≈")
    # Nothing on the page is a secret.
    assert TOKEN not in page.content()
    screenshot(page, "overview", docs=True)

    page.goto(server.url + "/runs")
    expect(page.locator("#runs tbody tr")).to_have_count(6)
    page.goto(server.url + "/runs?recipe=keycloak&pr=7")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    page.goto(server.url + "/runs")
    screenshot(page, "runs", docs=True)

    page.goto(server.url + "/recipes/keycloak")
    # Healthcheck claimed, but db has none: flagged. Backups claimed, the stage was skipped
    # (the upgrade failed first): not a contradiction.
    flagged = page.locator("#claims tr.failing")
    expect(flagged).to_have_count(1)
    expect(flagged).to_contain_text("Healthcheck")
    expect(page.locator("#claims")).to_contain_text("contradicts the claim")
    expect(page.locator("textarea.copy")).to_contain_text("/badge/keycloak.svg")
    screenshot(page, "recipe", docs=True)

    page.goto(server.url + "/runs/keycloak-main-1")
    expect(page.locator("#failing")).to_contain_text("test_login_after_upgrade")
    expect(page.locator("#stages tr.Failed")).to_have_count(1)
    expect(page.locator("dd", has_text="x.ci.example.org")).to_contain_text("through the proxy")
    screenshot(page, "run-failed", docs=True)


def wait_for_lines(page: Page, console: str, expected: list[str], timeout: float) -> float:
    """Waits until the console's marker lines are exactly `expected`; returns the seconds taken."""
    start = time.monotonic()
    seen: list[str] = []
    while time.monotonic() - start < timeout:
        text = page.locator(console).inner_text()
        seen = [w for w in text.split() if w.startswith("line-")]
        if seen == expected:
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(
        f"expected {expected[-3:]} ({len(expected)}), saw {seen[-3:]} ({len(seen)})"
    )


def test_live_log_grows_in_order_across_reconnect_and_restart(server: Server, page: Page) -> None:
    server.recipe("nextcloud")
    server.run("nextcloud-pr12-c5", "nextcloud", running(), pr=12)
    server.append_log("nextcloud-pr12-c5", "install", ["line-0000 \x1b[32mdeploying\x1b[0m"])
    page.goto(server.url + "/runs/nextcloud-pr12-c5")
    console = "#console-install"
    expected = ["line-0000"]
    wait_for_lines(page, console, expected, 2)
    latencies = []
    for i in range(1, 11):
        line = f"line-{i:04d}"
        server.append_log("nextcloud-pr12-c5", "install", [line])
        expected.append(line)
        latencies.append(wait_for_lines(page, console, expected, 3))
    assert max(latencies) < 1.0, latencies
    expect(page.locator(f"{console} .f2")).to_have_text("deploying")

    # A dropped connection: the browser reconnects with Last-Event-ID and resumes there.
    page.evaluate("window.stop()")
    for i in range(11, 21):
        line = f"line-{i:04d}"
        server.append_log("nextcloud-pr12-c5", "install", [line])
        expected.append(line)
    # window.stop() does not close EventSource; a server restart does. Lines written while the
    # server is down arrive once it is back, nothing twice.
    server.stop()
    for i in range(21, 31):
        line = f"line-{i:04d}"
        server.append_log("nextcloud-pr12-c5", "install", [line])
        expected.append(line)
    server.start()
    for i in range(31, 41):
        line = f"line-{i:04d}"
        server.append_log("nextcloud-pr12-c5", "install", [line])
        expected.append(line)
    wait_for_lines(page, console, expected, 10)
    screenshot(page, "run-live", docs=True)

    # The run ends: the page says so and the stream stops (no endless reconnects).
    record = server.get("testruns", "nextcloud-pr12-c5")
    record["status"] = finished("Succeeded", all_passed())
    r = requests.put(
        f"{server.url}/api/v1/testruns/nextcloud-pr12-c5/status",
        json=record,
        headers=server.auth(),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    expect(page.locator("#console-install-status")).to_have_text("finished", timeout=5000)
    wait_for_lines(page, console, expected, 1)

    # Finished, the page is complete without JavaScript.
    context = page.context.browser.new_context(java_script_enabled=False)  # type: ignore[union-attr]
    nojs = context.new_page()
    nojs.goto(server.url + "/runs/nextcloud-pr12-c5")
    text = nojs.locator(console).inner_text()
    assert [w for w in text.split() if w.startswith("line-")] == expected
    context.close()


def test_a_100000_line_log_opens_and_follows_without_stalling(server: Server, page: Page) -> None:
    server.recipe("nextcloud")
    server.run("nextcloud-pr12-c5", "nextcloud", running(), pr=12)
    path = server.log_path("nextcloud-pr12-c5", "install")
    with open(path, "w", encoding="utf-8") as f:
        for i in range(100_000):
            f.write(f"2026-12-02T10:00:00.000Z step {i} \x1b[33mwaiting for converge\x1b[0m\n")
    start = time.monotonic()
    page.goto(server.url + "/runs/nextcloud-pr12-c5")
    expect(page.locator("#console-install")).to_contain_text("step 99999")
    opened = time.monotonic() - start
    assert opened < 5, opened
    expected: list[str] = []
    for i in range(20):
        line = f"line-{i:04d}"
        server.append_log(
            "nextcloud-pr12-c5", "install", [line] + [f"filler {j}" for j in range(500)]
        )
        expected.append(line)
        wait_for_lines(page, "#console-install", expected, 3)
    # The page stays responsive: a script round trip is quick while the log follows.
    t = time.monotonic()
    page.evaluate("1 + 1")
    assert time.monotonic() - t < 0.5
    # Auto-scroll keeps the newest line in view until the reader scrolls up.
    at_bottom = page.evaluate(
        "() => { const p = document.querySelector('#console-install');"
        " return p.scrollTop + p.clientHeight >= p.scrollHeight - 20; }"
    )
    assert at_bottom
    page.evaluate("document.querySelector('#console-install').scrollTop = 0")
    page.wait_for_timeout(100)
    server.append_log("nextcloud-pr12-c5", "install", ["line-0020"])
    expected.append("line-0020")
    wait_for_lines(page, "#console-install", expected, 3)
    assert page.evaluate("document.querySelector('#console-install').scrollTop") == 0
    expect(page.locator("#console-install-status")).to_contain_text("paused")
    screenshot(page, "run-big-log")


def test_cancel_is_refused_signed_out_and_works_signed_in(server: Server, page: Page) -> None:
    server.recipe("nextcloud")
    server.run("nextcloud-pr12-c5", "nextcloud", running(), pr=12)
    page.goto(server.url + "/runs/nextcloud-pr12-c5")
    expect(page.locator("form[action$='/cancel']")).to_have_count(0)
    # A forged POST (no session, no CSRF token) changes nothing.
    r = requests.post(f"{server.url}/runs/nextcloud-pr12-c5/cancel", data={"csrf": "x"}, timeout=10)
    assert r.status_code == 403
    assert server.get("testruns", "nextcloud-pr12-c5")["spec"].get("cancel") is not True

    # A wrong token does not sign in.
    page.goto(server.url + "/signin")
    page.fill("input[name=token]", "not-the-token")
    page.click("button[type=submit]")
    expect(page.locator("p.error")).to_be_visible()

    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    cookies = page.context.cookies()
    session = [c for c in cookies if c["name"] == "ccci_session"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    assert TOKEN not in session[0]["value"]
    page.goto(server.url + "/runs/nextcloud-pr12-c5")
    screenshot(page, "run-operator", docs=True)
    # Signed in but without the form's CSRF token: refused.
    forged = page.request.post(
        f"{server.url}/runs/nextcloud-pr12-c5/cancel", form={"csrf": "forged"}
    )
    assert forged.status == 403
    page.click("form[action$='/cancel'] button")
    page.wait_for_url("**/runs/nextcloud-pr12-c5")
    assert server.get("testruns", "nextcloud-pr12-c5")["spec"]["cancel"] is True
    expect(page.locator("table.summary")).to_contain_text("cancelling")


def test_badge_is_valid_svg_and_never_cached(server: Server, page: Page) -> None:
    populate(server)
    for recipe, word in (("custom-html", "passing"), ("keycloak", "failing")):
        r = requests.get(f"{server.url}/badge/{recipe}.svg", timeout=10)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("image/svg+xml")
        assert "no-cache" in r.headers["cache-control"]
        root = ET.fromstring(r.content)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert int(root.attrib["width"]) > 60
        assert word in r.text
        j = requests.get(f"{server.url}/badge/{recipe}.json", timeout=10).json()
        assert j["schemaVersion"] == 1 and j["message"].startswith(word)
    unknown = requests.get(f"{server.url}/badge/no-such-recipe.svg", timeout=10)
    assert unknown.status_code == 404
    ET.fromstring(unknown.content)
    # Chromium renders it as an image.
    page.goto(server.url + "/recipes/custom-html")
    img = page.locator("h1 img")
    expect(img).to_be_visible()
    assert img.evaluate("i => i.complete && i.naturalWidth") > 60
