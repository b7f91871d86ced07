"""The environment contract between a cc-ci test job and a suite (``CCCI_*`` variables)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class Stage(StrEnum):
    """A lifecycle stage of a run (``CCCI_STAGE``)."""

    INSTALL = "install"
    UPGRADE = "upgrade"
    BACKUP_RESTORE = "backup-restore"


class Phase(StrEnum):
    """A test step of a stage (``CCCI_PHASE``)."""

    CHECK = "check"
    PRE = "pre"
    POST = "post"
    MUTATE = "mutate"


class ContractError(RuntimeError):
    """The environment does not carry what the contract requires."""


class WaitTimeout(AssertionError):
    """``App.wait_for`` gave up; the message says what was awaited and what was last seen."""


REQUIRED = ("CCCI_APP_URL", "CCCI_APP_DOMAIN", "CCCI_STAGE", "CCCI_PHASE")


@dataclass(frozen=True)
class AppConfig:
    """The values of the contract, parsed."""

    url: str
    domain: str
    stack: str
    recipe: str
    stage: Stage
    phase: Phase
    version: str
    previous_version: str | None
    results_dir: Path
    secrets_dir: Path
    proxy_addr: str | None = None
    ca_file: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def routing(self) -> str:
        """``proxy`` when the app's domain is reached through the proxy, else ``direct``."""
        return "proxy" if self.proxy_addr else "direct"

    @staticmethod
    def from_env(env: Mapping[str, str] | None = None) -> AppConfig:
        """Reads the contract from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        missing = [k for k in REQUIRED if not env.get(k)]
        if missing:
            raise ContractError(
                "not running inside a cc-ci test job: missing "
                + ", ".join(missing)
                + " (to run a suite by hand, see docs/writing-tests.md)"
            )
        try:
            stage = Stage(env["CCCI_STAGE"])
            phase = Phase(env["CCCI_PHASE"])
        except ValueError as error:
            raise ContractError(f"bad CCCI_STAGE or CCCI_PHASE: {error}") from error
        return AppConfig(
            url=env["CCCI_APP_URL"].rstrip("/"),
            domain=env["CCCI_APP_DOMAIN"],
            stack=env.get("CCCI_STACK", ""),
            recipe=env.get("CCCI_RECIPE", ""),
            stage=stage,
            phase=phase,
            version=env.get("CCCI_VERSION", ""),
            previous_version=env.get("CCCI_PREVIOUS_VERSION") or None,
            results_dir=Path(env.get("CCCI_RESULTS_DIR") or "ccci-results"),
            secrets_dir=Path(env.get("CCCI_SECRETS_DIR") or "/run/secrets"),
            proxy_addr=env.get("CCCI_PROXY_ADDR") or None,
            ca_file=env.get("CCCI_CA_FILE") or None,
            extra={k: v for k, v in env.items() if k.startswith("CCCI_")},
        )


class App:
    """The app under test: the contract's values, its secrets, and waiting helpers."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config

    def __getattr__(self, name: str) -> object:
        return getattr(self.config, name)

    @property
    def url(self) -> str:
        """Base URL of the app, without a trailing slash."""
        return self.config.url

    @property
    def domain(self) -> str:
        """The app's domain."""
        return self.config.domain

    @property
    def stage(self) -> Stage:
        """The stage this step belongs to."""
        return self.config.stage

    @property
    def phase(self) -> Phase:
        """The step's phase."""
        return self.config.phase

    def url_for(self, path: str) -> str:
        """The absolute URL of ``path`` on the app."""
        return self.config.url + "/" + path.lstrip("/")

    def secret(self, name: str) -> str:
        """The value of the app's generated secret ``name`` (e.g. ``admin_password``).

        The job mounts the app's own swarm secrets under the names the app sees them by.
        """
        if not name or "/" in name or name.startswith("."):
            raise ContractError(f"bad secret name {name!r}")
        path = self.config.secrets_dir / name
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            known = sorted(p.name for p in self.config.secrets_dir.glob("*")) or ["none"]
            raise ContractError(
                f"the app has no secret {name!r} (mounted: {', '.join(known)})"
            ) from None

    def wait_for(
        self,
        probe: Callable[[], T],
        *,
        timeout: float = 30.0,
        interval: float = 0.5,
        what: str | None = None,
    ) -> T:
        """Calls ``probe`` until it returns a truthy value (returned) or ``timeout`` passes.

        Exceptions raised by ``probe`` count as "not yet"; the last one is reported when the
        wait gives up, as a ``WaitTimeout`` naming ``what``.
        """
        return wait_for(probe, timeout=timeout, interval=interval, what=what)


def wait_for(
    probe: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.5,
    what: str | None = None,
) -> T:
    """See ``App.wait_for``."""
    deadline = time.monotonic() + timeout
    last: str = "nothing yet"
    while True:
        try:
            value = probe()
            if value:
                return value
            last = f"returned {value!r}"
        except Exception as error:  # noqa: BLE001 - a failing probe means "not yet"
            last = f"raised {type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            name = what or getattr(probe, "__name__", "condition")
            raise WaitTimeout(f"waited {timeout:g} s for {name}; last {last}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
