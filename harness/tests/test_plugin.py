"""The plugin end to end in a pytest subprocess: selection, JUnit with origins, collection
errors, and the artifacts of a failing browser test driven in real Chromium."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from ccci_harness.runner import main as ccci_run

SUITE_INSTALL = """
import pytest

def test_home_answers(http, app):
    r = http.get("/")
    assert r.status_code == 200
    assert app.stage == "install"

@pytest.mark.phase("pre")
def test_seed_only_before_a_change(http):
    assert False, "must not run in install:check"

def test_wrong_heading(page, app):
    page.goto("/")
    assert page.locator("h1").inner_text() == "Goodbye", "heading mismatch"
"""

SUITE_UPGRADE = """
def test_never_in_install():
    assert False
"""

RECIPE_LOCAL = """
def test_recipe_own_check(http):
    assert "fixture app" in http.get("/").text
"""


def env_for(
    monkeypatch: pytest.MonkeyPatch, url: str, results: Path, recipe_dir: Path, **more: str
) -> None:
    monkeypatch.setenv("CCCI_APP_URL", url)
    monkeypatch.setenv("CCCI_APP_DOMAIN", "fixture.ci.test")
    monkeypatch.setenv("CCCI_STAGE", more.get("stage", "install"))
    monkeypatch.setenv("CCCI_PHASE", more.get("phase", "check"))
    monkeypatch.setenv("CCCI_RESULTS_DIR", str(results))
    monkeypatch.setenv("CCCI_RECIPE_TESTS_DIR", str(recipe_dir))


def junit(results: Path) -> dict[str, ET.Element]:
    tree = ET.parse(results / "junit.xml")
    return {c.get("name", ""): c for c in tree.iter("testcase")}


def origin(case: ET.Element) -> str | None:
    for p in case.iter("property"):
        if p.get("name") == "origin":
            return p.get("value")
    return None


def test_a_step_runs_its_tests_with_origins_and_keeps_browser_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, web_url: str
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_install.py").write_text(SUITE_INSTALL)
    (suite / "test_upgrade.py").write_text(SUITE_UPGRADE)
    recipe = tmp_path / "recipe-tests"
    recipe.mkdir()
    (recipe / "test_install.py").write_text(RECIPE_LOCAL)
    results = tmp_path / "results"
    env_for(monkeypatch, web_url, results, recipe)

    code = ccci_run([str(suite), str(recipe)])

    assert code == pytest.ExitCode.TESTS_FAILED
    cases = junit(results)
    assert set(cases) == {"test_home_answers", "test_wrong_heading", "test_recipe_own_check"}
    assert origin(cases["test_home_answers"]) == "suite"
    assert origin(cases["test_recipe_own_check"]) == "recipe"
    failure = cases["test_wrong_heading"].find("failure")
    assert failure is not None and "heading mismatch" in failure.get("message", "")
    arts = results / "artifacts"
    [failing] = list(arts.iterdir())
    assert "test_wrong_heading" in failing.name
    assert (failing / "screenshot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (failing / "trace.zip").read_bytes()[:2] == b"PK"
    assert "Hello from the fixture app" in (failing / "page.html").read_text()
    assert "heading mismatch" in (failing / "failure-call.txt").read_text()
    summary = json.loads((results / "results.json").read_text())
    assert summary["first_test_started"] <= summary["last_test_finished"]


def test_a_broken_test_file_is_a_collection_error_in_junit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, web_url: str
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_install.py").write_text("def test_x(:\n    pass\n")
    results = tmp_path / "results"
    env_for(monkeypatch, web_url, results, tmp_path / "none")
    code = ccci_run([str(suite)])
    assert code == pytest.ExitCode.INTERRUPTED
    [case] = junit(results).values()
    error = case.find("error")
    assert error is not None and error.get("message") == "collection failure"
    assert "SyntaxError" in (error.text or "")


def test_no_selected_test_exits_no_tests_collected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, web_url: str
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_upgrade.py").write_text(SUITE_UPGRADE)
    results = tmp_path / "results"
    env_for(monkeypatch, web_url, results, tmp_path / "none", stage="install")
    assert ccci_run([str(suite)]) == pytest.ExitCode.NO_TESTS_COLLECTED


def test_an_unknown_marker_value_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, web_url: str
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_x.py").write_text(
        "import pytest\n@pytest.mark.stage('instal')\ndef test_x():\n    pass\n"
    )
    env_for(monkeypatch, web_url, tmp_path / "results", tmp_path / "none")
    assert ccci_run([str(suite)]) == pytest.ExitCode.USAGE_ERROR
