"""Run statuses shaped like the TestRun controller writes them, for the UI tests."""

from __future__ import annotations

from typing import Any

AT = "2026-12-02T10:00:00Z"
LATER = "2026-12-02T10:07:30Z"


def step(name: str, ok: bool | None = True, message: str = "") -> dict[str, Any]:
    s: dict[str, Any] = {"name": name, "started": AT}
    if ok is not None:
        s["finished"] = LATER
        s["ok"] = ok
    if message:
        s["message"] = message
    return s


def stage(
    kind: str,
    phase: str,
    passed: int = 3,
    failed: int = 0,
    failing: list[str] | None = None,
    message: str = "",
    artifacts: list[str] | None = None,
) -> dict[str, Any]:
    ok = phase == "Passed"
    return {
        "stage": kind,
        "phase": phase,
        "steps": [step("deploy"), step("converge"), step("test:check", ok, message)],
        "tests": {"passed": passed, "failed": failed, "skipped": 0},
        "failingTests": failing or [],
        "artifacts": artifacts or [],
        "message": message,
        "started": AT,
        "finished": LATER,
    }


def finished(
    phase: str, stages: list[dict[str, Any]], version: str = "1.2.0+1.25"
) -> dict[str, Any]:
    return {
        "phase": phase,
        "commit": "4c1e8f0b2a9d7e6c5b4a39281706f5e4d3c2b1a0",
        "app": {
            "stack": "x",
            "domain": "x.ci.example.org",
            "routing": "Proxy",
            "version": version,
            "previousVersion": "1.1.0+1.24",
        },
        "steps": [step("fetch"), step("teardown")],
        "stages": stages,
        "tornDown": True,
        "started": AT,
        "finished": LATER,
        "message": "all stages passed" if phase == "Succeeded" else "a stage failed",
    }


def all_passed() -> list[dict[str, Any]]:
    return [stage(k, "Passed") for k in ("install", "upgrade", "backup-restore")]


def running() -> dict[str, Any]:
    return {
        "phase": "Running",
        "commit": "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b",
        "steps": [step("fetch")],
        "stages": [
            {
                "stage": "install",
                "phase": "Running",
                "steps": [step("deploy"), step("converge", None)],
                "started": AT,
            }
        ],
        "started": AT,
    }


def pending(position: int) -> dict[str, Any]:
    return {"phase": "Pending", "queuePosition": position}
