"""The pytest plugin: markers, step selection, fixtures, failure artifacts and origins."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ccci_harness import browser
from ccci_harness.contract import App, AppConfig, ContractError
from ccci_harness.http import AppHttp
from ccci_harness.select import MarkerError, parse_phases, parse_stages, selected

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

RESULTS_FILE = "results.json"
ARTIFACTS = "artifacts"


def _config() -> AppConfig | None:
    try:
        return AppConfig.from_env()
    except ContractError:
        return None


def recipe_tests_dir() -> Path:
    """Where the job mounts the recipe repository's own ``tests/``."""
    return Path(os.environ.get("CCCI_RECIPE_TESTS_DIR") or "/recipe-tests")


def origin_of(path: Path) -> str:
    """``recipe`` for a test of the recipe repository's ``tests/``, else ``suite``."""
    try:
        path.resolve().relative_to(recipe_tests_dir().resolve())
    except ValueError:
        return "suite"
    return "recipe"


def slug(nodeid: str) -> str:
    """A directory name for a test's artifacts."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", nodeid).strip("-.")
    return clean[:120] or "test"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "stage(*names): run only in these stages (install, upgrade, backup-restore)"
    )
    config.addinivalue_line(
        "markers", "phase(*names): run only in these steps (check, pre, post, mutate)"
    )
    config.stash[_timing] = {}


_timing = pytest.StashKey[dict[str, float]]()
_reports = pytest.StashKey[list[dict[str, Any]]]()


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    app = _config()
    for item in items:
        item.user_properties.append(("origin", origin_of(item.path)))
    if app is None:
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        stage_marks = list(item.iter_markers("stage"))
        phase_marks = list(item.iter_markers("phase"))
        try:
            stages = (
                parse_stages([a for m in stage_marks for a in m.args], item.nodeid)
                if stage_marks
                else None
            )
            phases = (
                parse_phases([a for m in phase_marks for a in m.args], item.nodeid)
                if phase_marks
                else None
            )
        except MarkerError as error:
            raise pytest.UsageError(str(error)) from None
        if selected(item.path, stages, phases, app.stage, app.phase):
            keep.append(item)
        else:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    timing = item.config.stash[_timing]
    timing.setdefault("first_test_started", time.time())


def pytest_runtest_teardown(item: pytest.Item) -> None:
    item.config.stash[_timing]["last_test_finished"] = time.time()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash[_phase_report(report.when)] = report
    if report.failed:
        out = results_dir(item.config) / ARTIFACTS / slug(item.nodeid)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"failure-{report.when}.txt").write_text(report.longreprtext, encoding="utf-8")
    return report


_phase_keys: dict[str, pytest.StashKey[pytest.TestReport]] = {}


def _phase_report(when: str) -> pytest.StashKey[pytest.TestReport]:
    return _phase_keys.setdefault(when, pytest.StashKey[pytest.TestReport]())


def failed(item: pytest.Item) -> bool:
    """Whether the test's setup or call failed."""
    for when in ("setup", "call"):
        report = item.stash.get(_phase_report(when), None)
        if report is not None and report.failed:
            return True
    return False


def results_dir(config: pytest.Config) -> Path:
    """``CCCI_RESULTS_DIR`` (``ccci-results`` outside a job)."""
    _ = config
    return Path(os.environ.get("CCCI_RESULTS_DIR") or "ccci-results")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    out = results_dir(session.config)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    timing = session.config.stash.get(_timing, {})
    summary = {
        "exitstatus": int(exitstatus),
        "collected": session.testscollected,
        "failed": session.testsfailed,
        "first_test_started": timing.get("first_test_started"),
        "last_test_finished": timing.get("last_test_finished"),
        "finished": time.time(),
    }
    (out / RESULTS_FILE).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def app_config() -> AppConfig:
    """The parsed ``CCCI_*`` contract."""
    return AppConfig.from_env()


@pytest.fixture(scope="session")
def app(app_config: AppConfig) -> App:
    """The app under test: ``url``, ``domain``, ``stage``, ``phase``, ``version``,
    ``previous_version``, ``secret(name)``, ``wait_for(probe, timeout=…)``."""
    return App(app_config)


@pytest.fixture
def http(app_config: AppConfig) -> Iterator[AppHttp]:
    """A requests session aimed at the app (relative URLs), following the routing mode."""
    with AppHttp(app_config) as session:
        yield session


@pytest.fixture(scope="session")
def _playwright() -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser_instance(_playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, launched once per session."""
    config = _config()
    if config is not None and config.proxy_addr and config.ca_file:
        # Chromium verifies the proxy's TLS against the certificate cc-ci mounted.
        browser.trust(config.ca_file, Path.home())
    b = _playwright.chromium.launch(
        executable_path=browser.executable(), args=browser.launch_args(config)
    )
    yield b
    b.close()


@pytest.fixture
def browser_context(
    request: pytest.FixtureRequest, browser_instance: Browser
) -> Iterator[BrowserContext]:
    """A fresh browser context per test, traced; on failure the trace is kept."""
    config = _config()
    context = browser_instance.new_context(
        base_url=browser.base_url(config) if config else None,
        viewport={"width": 1280, "height": 800},
    )
    context.set_default_timeout(15_000)
    context.tracing.start(screenshots=True, snapshots=True)
    yield context
    item = request.node
    if isinstance(item, pytest.Item) and failed(item):
        out = results_dir(request.config) / ARTIFACTS / slug(item.nodeid)
        out.mkdir(parents=True, exist_ok=True)
        for page in context.pages[-1:]:
            try:
                page.screenshot(path=str(out / "screenshot.png"), full_page=True)
                (out / "page.html").write_text(page.content(), encoding="utf-8")
            except Exception as error:  # noqa: BLE001 - keep the other artifacts
                (out / "screenshot-error.txt").write_text(str(error), encoding="utf-8")
        context.tracing.stop(path=str(out / "trace.zip"))
    else:
        context.tracing.stop()
    context.close()


@pytest.fixture
def page(browser_context: BrowserContext) -> Page:
    """A Playwright page of Chromium, its relative URLs on the app. On failure the job keeps
    a screenshot, the page's HTML and a Playwright trace (``playwright show-trace``)."""
    return browser_context.new_page()
