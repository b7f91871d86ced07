"""``AppHttp``: a requests session aimed at the app, following the routing mode."""

from __future__ import annotations

import ssl
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from ccci_harness.contract import AppConfig


def proxy_tls(ca_file: str | None) -> ssl.SSLContext:
    """TLS verification for the proxy: against the certificate cc-ci was given (``ca_file``,
    the proxy's wildcard certificate or its chain; any certificate in it is a trust anchor,
    as curl's ``--cacert`` does), or the system's CAs when there is none."""
    context = ssl.create_default_context(cafile=ca_file)
    if ca_file:
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


class _ProxyAdapter(HTTPAdapter):
    """Sends every request for the app's domain to the proxy address, keeping the domain for
    the Host header, TLS SNI and certificate checks (what DNS pointing at the proxy would do)."""

    def __init__(self, domain: str, ca_file: str | None) -> None:
        self.domain = domain
        self.tls = proxy_tls(ca_file)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self.domain
        kwargs["assert_hostname"] = self.domain
        kwargs["ssl_context"] = self.tls
        super().init_poolmanager(*args, **kwargs)

    def build_connection_pool_key_attributes(
        self, request: Any, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Every connection uses the adapter's TLS context (requests would pick its own)."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        pool_kwargs["ssl_context"] = self.tls
        return host_params, pool_kwargs


class AppHttp(requests.Session):
    """A session whose relative URLs (``http.get("/notes")``) go to the app.

    Direct mode: the base URL is ``CCCI_APP_URL``. Proxy mode (``CCCI_PROXY_ADDR`` set):
    requests go to ``https://<domain>`` through the proxy address, with the domain's SNI, TLS
    verified against ``CCCI_CA_FILE`` (the proxy's certificate) or the system's CAs.
    """

    def __init__(self, config: AppConfig, timeout: float = 30.0) -> None:
        super().__init__()
        self.config = config
        self.timeout = timeout
        self.headers["User-Agent"] = "cc-ci-harness"
        if config.proxy_addr:
            self.base_url = f"https://{config.proxy_addr}"
            self.headers["Host"] = config.domain
            self.mount(self.base_url, _ProxyAdapter(config.domain, config.ca_file))
            if config.ca_file:
                self.verify = config.ca_file
        else:
            self.base_url = config.url

    def request(  # type: ignore[override]
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Like ``requests.Session.request``; relative URLs are the app's, with a timeout.
        In proxy mode an absolute URL on the app's domain goes through the proxy too."""
        target = url.decode() if isinstance(url, bytes) else url
        if self.config.proxy_addr:
            own = f"https://{self.config.domain}"
            if target == own or target.startswith(own + "/"):
                target = target[len(own) :]
        if not target.startswith(("http://", "https://")):
            target = self.base_url + "/" + target.lstrip("/")
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, target, *args, **kwargs)
