"""Proxy mode against a local TLS server standing in for the proxy: the app's domain is sent
to the proxy address with the domain's Host header and SNI, and TLS is verified against the
certificate cc-ci mounts (``CCCI_CA_FILE``) — by requests and by real Chromium alike; an
unrelated certificate is refused. Needs ``openssl`` and ``certutil`` (scripts/python-env)."""

from __future__ import annotations

import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from ccci_harness import browser
from ccci_harness.contract import AppConfig, Phase, Stage
from ccci_harness.http import AppHttp

BASE = "proxy.ci.test"
DOMAIN = f"notes.{BASE}"


def openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def signed_wildcard(dir: Path, stem: str) -> Path:
    """A CA of its own, and a ``*.proxy.ci.test`` certificate it signed: ``<stem>.crt``."""
    openssl(
        dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={stem} test CA", "-keyout", f"{stem}-ca.key", "-out", f"{stem}-ca.pem",
    )  # fmt: skip
    (dir / f"{stem}.ext").write_text(f"subjectAltName=DNS:*.{BASE},DNS:{BASE}\n")
    openssl(
        dir, "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=*.{BASE}",
        "-keyout", f"{stem}.key", "-out", f"{stem}.csr",
    )  # fmt: skip
    openssl(
        dir, "x509", "-req", "-in", f"{stem}.csr", "-CA", f"{stem}-ca.pem",
        "-CAkey", f"{stem}-ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", f"{stem}.ext", "-out", f"{stem}.crt",
    )  # fmt: skip
    return dir / f"{stem}.crt"


class _Hosts(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        host = self.headers.get("Host", "")
        body = f"<!doctype html><title>proxied</title><h1>via proxy for {host}</h1>".encode()
        self.send_response(200 if host == DOMAIN else 404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The proxy's certificate, and an unrelated one for the same names."""
    dir = tmp_path_factory.mktemp("certs")
    return signed_wildcard(dir, "proxy"), signed_wildcard(dir, "other")


@pytest.fixture(scope="module")
def proxy(certs: tuple[Path, Path]) -> Iterator[str]:
    """``host:port`` of a TLS server with the proxy's certificate, answering 200 only for the
    app's Host header (a proxy without a route answers 404)."""
    cert = certs[0]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hosts)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, cert.with_suffix(".key"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def config(proxy: str, ca_file: Path | None, tmp: Path) -> AppConfig:
    return AppConfig(
        url=f"https://{DOMAIN}",
        domain=DOMAIN,
        stack="notes_proxy_ci_test",
        recipe="notes",
        stage=Stage.INSTALL,
        phase=Phase.CHECK,
        version="1.0.0+1",
        previous_version=None,
        results_dir=tmp / "results",
        secrets_dir=tmp / "secrets",
        proxy_addr=proxy,
        ca_file=str(ca_file) if ca_file else None,
    )


def test_http_goes_through_the_proxy_by_domain_verified_against_its_certificate(
    proxy: str, certs: tuple[Path, Path], tmp_path: Path
) -> None:
    good = config(proxy, certs[0], tmp_path)
    with AppHttp(good) as http:
        r = http.get("/")
        assert r.status_code == 200, r.text
        assert f"via proxy for {DOMAIN}" in r.text
        # An absolute URL on the app's own domain goes through the proxy as well.
        assert http.get(f"https://{DOMAIN}/notes").status_code == 200
    with AppHttp(replace(good, ca_file=str(certs[1]))) as http:
        with pytest.raises(requests.exceptions.SSLError):
            http.get("/")


def test_chromium_reaches_the_app_through_the_proxy_and_verifies_tls(
    proxy: str, certs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import Error, sync_playwright

    cfg = config(proxy, certs[0], tmp_path)
    trusted, untrusted = tmp_path / "trusted", tmp_path / "untrusted"
    browser.trust(certs[0], trusted)
    browser.trust(certs[1], untrusted)
    with sync_playwright() as p:
        for home, ok in [(trusted, True), (untrusted, False)]:
            # Chromium reads trust from $HOME/.pki/nssdb (the driver's env is not ours).
            monkeypatch.setenv("HOME", str(home))
            b = p.chromium.launch(
                executable_path=browser.executable(),
                args=browser.launch_args(cfg),
                env=dict(os.environ),
            )
            try:
                page = b.new_page(base_url=browser.base_url(cfg))
                if ok:
                    page.goto("/")
                    assert page.locator("h1").inner_text() == f"via proxy for {DOMAIN}"
                else:
                    with pytest.raises(Error, match="ERR_CERT"):
                        page.goto("/")
            finally:
                b.close()


def test_trust_needs_a_certificate(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(browser.TrustError, match="no PEM certificate"):
        browser.trust(empty, tmp_path)
