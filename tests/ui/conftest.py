"""Fixtures of the dashboard UI tests: a real `cc-ci serve` (its own state directory, runs not
executed, so records and run logs are what the test writes) and Debian's Chromium driven by
Playwright. Screenshots go to `target/ui-screenshots/` (test artifacts) and, for the pages the
docs show, to `docs/screenshots/`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "target" / "ui-screenshots"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
TOKEN = "ui-test-token-0123456789"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def binary() -> Path:
    """The cc-ci binary: $CCCI_BIN, else the debug build (built first when missing)."""
    env = os.environ.get("CCCI_BIN")
    if env:
        return Path(env)
    path = ROOT / "target" / "debug" / "cc-ci"
    if not path.exists():
        subprocess.run(["cargo", "build", "--bin", "cc-ci"], cwd=ROOT, check=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One `cc-ci serve --no-runs` on a fixed port, restartable with the same state."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        state.mkdir(parents=True, exist_ok=True)
        (state / "api-token").write_text(TOKEN + "\n")
        os.chmod(state / "api-token", 0o600)

    def start(self) -> None:
        log = open(self.state / "serve.log", "ab")  # noqa: SIM115 - kept open for the child
        self.proc = subprocess.Popen(
            [
                str(binary()),
                "serve",
                "--no-runs",
                "--state-dir",
                str(self.state),
                "--listen",
                f"127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError("cc-ci serve did not become ready: " + self.tail())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def tail(self) -> str:
        path = self.state / "serve.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    # Records, through the API.
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    def post(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        r = requests.post(f"{self.url}/api/v1/{plural}", json=body, headers=self.auth(), timeout=10)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    def get(self, plural: str, name: str) -> dict[str, Any]:
        r = requests.get(f"{self.url}/api/v1/{plural}/{name}", timeout=10)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def recipe(self, name: str) -> None:
        self.post(
            "recipes",
            {
                "apiVersion": "cc-ci/v1alpha1",
                "kind": "Recipe",
                "metadata": {"name": name},
                "spec": {"git": f"https://git.coopcloud.tech/coop-cloud/{name}.git"},
            },
        )

    def run(
        self,
        name: str,
        recipe: str,
        status: dict[str, Any],
        pr: int | None = None,
        requester: str = "decentral1se",
    ) -> None:
        spec: dict[str, Any] = {
            "recipe": recipe,
            "ref": "4c1e8f0b2a9d7e6c5b4a39281706f5e4d3c2b1a0",
            "source": {"requester": requester},
        }
        if pr is not None:
            spec["pr"] = pr
        self.post(
            "testruns",
            {
                "apiVersion": "cc-ci/v1alpha1",
                "kind": "TestRun",
                "metadata": {"name": name},
                "spec": spec,
            },
        )
        record = self.get("testruns", name)
        record["status"] = status
        r = requests.put(
            f"{self.url}/api/v1/testruns/{name}/status",
            json=record,
            headers=self.auth(),
            timeout=10,
        )
        assert r.status_code == 200, r.text

    # Run logs and facts are files under the state directory, as the controller writes them.
    def log_path(self, run: str, stream: str) -> Path:
        path = self.state / "runs" / run / "logs" / f"{stream}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def append_log(self, run: str, stream: str, lines: list[str]) -> None:
        with open(self.log_path(run, stream), "a", encoding="utf-8") as f:
            f.write("".join(f"2026-12-02T10:00:00.000Z {line}\n" for line in lines))

    def facts(self, run: str, facts: dict[str, Any]) -> None:
        path = self.state / "runs" / run / "recipe-facts.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(facts))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "state")
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


def screenshot(page: Page, name: str, docs: bool = False) -> Path:
    """Keeps a full-page screenshot as a test artifact (and in docs/screenshots/ if `docs`)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs:
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SHOTS / f"{name}.png")
    return path
