"""Playwright Chromium as cc-ci runs it: Debian's binary, fixed arguments, and in proxy mode a
host-resolver rule sending the app's domain to the proxy, whose certificate Chromium is made to
trust through the user's NSS database (where Chromium on Linux reads added trust from)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

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

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


class TrustError(RuntimeError):
    """The proxy's certificate could not be added to Chromium's trust store."""


def executable() -> str:
    """The Chromium binary (``CCCI_CHROMIUM`` overrides; never a downloaded one)."""
    return os.environ.get("CCCI_CHROMIUM") or CHROMIUM


def launch_args(config: AppConfig | None) -> list[str]:
    """Chromium's arguments for ``config``'s routing mode: in proxy mode the app's domain
    resolves to the proxy address (``host:port``; the URL keeps the domain, so the Host header,
    SNI and the certificate check are the domain's, as with DNS pointing at the proxy)."""
    args = list(ARGS)
    if config is not None and config.proxy_addr:
        args.append(f"--host-resolver-rules=MAP {config.domain} {config.proxy_addr}")
    return args


def base_url(config: AppConfig) -> str:
    """The URL pages open relative paths against."""
    if config.proxy_addr:
        return f"https://{config.domain}"
    return config.url


def certificates(pem: str) -> list[str]:
    """The PEM certificates in ``pem`` (a certificate file or a full chain)."""
    return _PEM.findall(pem)


def trust(ca_file: str | Path, home: str | Path) -> Path:
    """Adds every certificate of ``ca_file`` to the NSS database under ``home``
    (``<home>/.pki/nssdb``), trusted both as a CA and as the server's own certificate, so TLS
    to the proxy is verified against exactly the certificate cc-ci was given. Returns the
    database's directory. Needs ``certutil`` (Debian's ``libnss3-tools``)."""
    tool = shutil.which("certutil")
    if tool is None:
        raise TrustError("certutil is missing (install libnss3-tools) to trust the proxy's CA")
    certs = certificates(Path(ca_file).read_text(encoding="utf-8"))
    if not certs:
        raise TrustError(f"no PEM certificate in {ca_file}")
    db = Path(home) / ".pki" / "nssdb"
    db.mkdir(parents=True, exist_ok=True)
    if not (db / "cert9.db").exists():
        _certutil(tool, "-N", "-d", f"sql:{db}", "--empty-password")
    with tempfile.TemporaryDirectory() as tmp:
        for i, cert in enumerate(certs):
            one = Path(tmp) / f"cert{i}.pem"
            one.write_text(cert + "\n", encoding="utf-8")
            name = f"cc-ci proxy {i}"
            _certutil(tool, "-A", "-d", f"sql:{db}", "-n", name, "-t", "CP,,", "-i", str(one))
    return db


def _certutil(tool: str, *args: str) -> None:
    done = subprocess.run([tool, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TrustError(f"certutil {' '.join(args[:1])} failed: {done.stderr.strip()}")
