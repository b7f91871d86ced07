"""Playwright Chromium as cc-ci runs it: Debian's binary, fixed arguments, and in proxy mode a
host-resolver rule sending the app's domain to the proxy."""

from __future__ import annotations

import os

from ccci_harness.contract import AppConfig

CHROMIUM = "/usr/bin/chromium"

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Containers get a 64 MB /dev/shm; Chromium then writes shared memory to /tmp instead.
    "--disable-dev-shm-usage",
]


def executable() -> str:
    """The Chromium binary (``CCCI_CHROMIUM`` overrides; never a downloaded one)."""
    return os.environ.get("CCCI_CHROMIUM") or CHROMIUM


def launch_args(config: AppConfig | None) -> list[str]:
    """Chromium's arguments for ``config``'s routing mode."""
    args = list(ARGS)
    if config is not None and config.proxy_addr:
        host = config.proxy_addr.rsplit(":", 1)[0]
        args.append(f"--host-resolver-rules=MAP {config.domain} {host}")
    return args


def base_url(config: AppConfig) -> str:
    """The URL pages open relative paths against."""
    if config.proxy_addr:
        return f"https://{config.domain}"
    return config.url
