"""The CCCI_* contract, secrets and waiting."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ccci_harness.contract import App, AppConfig, ContractError, Phase, Stage, WaitTimeout

BASE = {
    "CCCI_APP_URL": "http://tasks.app:8000/",
    "CCCI_APP_DOMAIN": "app.ci.test",
    "CCCI_STACK": "app_ci_test",
    "CCCI_RECIPE": "webapp-pg",
    "CCCI_STAGE": "upgrade",
    "CCCI_PHASE": "pre",
    "CCCI_VERSION": "1.0.0+0.1",
    "CCCI_PREVIOUS_VERSION": "",
}


def test_the_contract_is_read_from_the_environment() -> None:
    c = AppConfig.from_env(BASE)
    assert c.url == "http://tasks.app:8000"
    assert c.stage is Stage.UPGRADE and c.phase is Phase.PRE
    assert c.previous_version is None
    assert c.routing == "direct"
    assert AppConfig.from_env({**BASE, "CCCI_PROXY_ADDR": "10.0.0.2:443"}).routing == "proxy"


def test_a_missing_or_bad_variable_is_a_clear_error() -> None:
    with pytest.raises(ContractError, match="CCCI_APP_URL"):
        AppConfig.from_env({k: v for k, v in BASE.items() if k != "CCCI_APP_URL"})
    with pytest.raises(ContractError, match="CCCI_STAGE"):
        AppConfig.from_env({**BASE, "CCCI_STAGE": "deploy"})


def test_secrets_are_read_by_name_and_cannot_escape_their_directory(tmp_path: Path) -> None:
    (tmp_path / "admin_password").write_text("s3cret\n")
    (tmp_path.parent / "outside").write_text("nope")
    app = App(AppConfig.from_env({**BASE, "CCCI_SECRETS_DIR": str(tmp_path)}))
    assert app.secret("admin_password") == "s3cret"
    with pytest.raises(ContractError, match="mounted: admin_password"):
        app.secret("db_password")
    for bad in ["../outside", "", ".hidden", "a/b"]:
        with pytest.raises(ContractError):
            app.secret(bad)


def test_wait_for_returns_the_first_truthy_value_and_times_out_naming_what() -> None:
    app = App(AppConfig.from_env(BASE))
    calls = iter([None, 0, "ready"])
    assert app.wait_for(lambda: next(calls), timeout=5, interval=0.01) == "ready"

    def never() -> bool:
        raise ConnectionError("refused")

    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="the login page.*ConnectionError: refused"):
        app.wait_for(never, timeout=0.3, interval=0.05, what="the login page")
    assert 0.25 < time.monotonic() - started < 2
