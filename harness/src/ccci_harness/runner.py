"""``ccci-run``: what a test job runs. Runs pytest over the suite and the recipe's own tests
with JUnit output in ``CCCI_RESULTS_DIR``; flags override the contract's variables, so the same
command runs a suite by hand against a deployed app."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest

SUITE_DIR = "/suite"
RECIPE_TESTS_DIR = "/recipe-tests"


def has_tests(path: Path) -> bool:
    """Whether ``path`` is a directory holding at least one ``test_*.py``/``*_test.py``."""
    if not path.is_dir():
        return False
    return any(path.rglob("test_*.py")) or any(path.rglob("*_test.py"))


def pytest_args(paths: list[Path], results: Path, extra: list[str]) -> list[str]:
    """The pytest command line of a job."""
    return [
        *[str(p) for p in paths],
        f"--junitxml={results / 'junit.xml'}",
        "-o",
        "junit_family=xunit2",
        "-o",
        "junit_logging=no",
        "-p",
        "no:cacheprovider",
        "--import-mode=importlib",
        "-rfE",
        "--tb=short",
        "-v",
        *extra,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ccci-run", description="Run a cc-ci suite against a deployed app."
    )
    parser.add_argument("paths", nargs="*", type=Path, help="test directories")
    parser.add_argument("--url", help="CCCI_APP_URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--domain", help="CCCI_APP_DOMAIN")
    parser.add_argument("--stage", help="CCCI_STAGE: install, upgrade or backup-restore")
    parser.add_argument("--phase", help="CCCI_PHASE: check, pre, post or mutate")
    parser.add_argument("--secrets-dir", help="CCCI_SECRETS_DIR: one file per app secret")
    parser.add_argument("--results", help="CCCI_RESULTS_DIR (default ./ccci-results)")
    args, extra = parser.parse_known_args(argv)
    for flag, var in [
        ("url", "CCCI_APP_URL"),
        ("domain", "CCCI_APP_DOMAIN"),
        ("stage", "CCCI_STAGE"),
        ("phase", "CCCI_PHASE"),
        ("secrets_dir", "CCCI_SECRETS_DIR"),
        ("results", "CCCI_RESULTS_DIR"),
    ]:
        value = getattr(args, flag)
        if value:
            os.environ[var] = value
    if os.environ.get("CCCI_APP_URL") and not os.environ.get("CCCI_APP_DOMAIN"):
        host = os.environ["CCCI_APP_URL"].split("://", 1)[-1].split("/", 1)[0]
        os.environ["CCCI_APP_DOMAIN"] = host.split(":", 1)[0]
    results = Path(os.environ.setdefault("CCCI_RESULTS_DIR", "ccci-results"))
    # Files written here are read and removed by the controller, whatever user it runs as.
    os.umask(0)
    results.mkdir(parents=True, exist_ok=True)
    paths = list(args.paths)
    if not paths:
        suite = Path(os.environ.get("CCCI_SUITE_DIR") or SUITE_DIR)
        recipe = Path(os.environ.get("CCCI_RECIPE_TESTS_DIR") or RECIPE_TESTS_DIR)
        paths = [p for p in (suite, recipe) if has_tests(p)]
    if not paths:
        print("ccci-run: no test files in the suite or the recipe's tests/", flush=True)
        return pytest.ExitCode.NO_TESTS_COLLECTED
    # Helper modules next to the tests (`from myapp_ui import log_in`) are importable.
    for p in reversed(paths):
        if p.is_dir():
            sys.path.insert(0, str(p.resolve()))
    return int(pytest.main(pytest_args(paths, results, extra)))


if __name__ == "__main__":
    sys.exit(main())
