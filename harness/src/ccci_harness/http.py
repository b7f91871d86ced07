"""``AppHttp``: a requests session aimed at the app, following the routing mode."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

from ccci_harness.contract import AppConfig


class _ProxyAdapter(HTTPAdapter):
    """Sends every request for the app's domain to the proxy address, keeping the domain for
    the Host header, TLS SNI and certificate checks (what DNS pointing at the proxy would do)."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self.domain
        kwargs["assert_hostname"] = self.domain
        super().init_poolmanager(*args, **kwargs)


class AppHttp(requests.Session):
    """A session whose relative URLs (``http.get("/notes")``) go to the app.

    Direct mode: the base URL is ``CCCI_APP_URL``. Proxy mode (``CCCI_PROXY_ADDR`` set):
    requests go to ``https://<domain>`` through the proxy address, with the domain's SNI.
    """

    def __init__(self, config: AppConfig, timeout: float = 30.0) -> None:
        super().__init__()
        self.config = config
        self.timeout = timeout
        self.headers["User-Agent"] = "cc-ci-harness"
        if config.proxy_addr:
            self.base_url = f"https://{config.proxy_addr}"
            self.headers["Host"] = config.domain
            self.mount(self.base_url, _ProxyAdapter(config.domain))
            if config.ca_file:
                self.verify = config.ca_file
        else:
            self.base_url = config.url

    def request(  # type: ignore[override]
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Like ``requests.Session.request``; relative URLs are the app's, with a timeout."""
        target = url.decode() if isinstance(url, bytes) else url
        if not target.startswith(("http://", "https://")):
            target = self.base_url + "/" + target.lstrip("/")
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, target, *args, **kwargs)
