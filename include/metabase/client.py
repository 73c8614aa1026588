"""A small Metabase REST API client: health, first-time setup, session login and JSON requests."""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

SESSION_HEADER = "X-Metabase-Session"


class MetabaseError(RuntimeError):
    """A Metabase API call failed; the message has the method, path, status and the start of the body."""

    def __init__(self, method: str, path: str, status: int, body: str):
        self.status = status
        super().__init__(f"Metabase {method} {path} -> HTTP {status}: {body[:500]}")


class MetabaseUnavailable(RuntimeError):
    """Metabase did not report healthy within the allowed time."""


class MetabaseClient:
    """JSON requests against one Metabase, authenticated by a session token once logged in.

    Args:
        base_url: Metabase's root URL, e.g. ``http://metabase:3000``.
        timeout_s: Timeout of each HTTP request.
    """

    def __init__(self, base_url: str, timeout_s: float = 30.0):
        import requests

        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = requests.Session()
        self._http.headers["Accept"] = "application/json"

    def close(self) -> None:
        """Release the HTTP connections."""
        self._http.close()

    def __enter__(self) -> MetabaseClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- plain requests ---

    def request(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> Any:
        """Send one request and return its decoded JSON body (``None`` when empty).

        Raises:
            MetabaseError: On any status other than 2xx.
        """
        response = self._http.request(
            method, f"{self.base_url}{path}", params=params, json=json, timeout=self.timeout_s
        )
        if not response.ok:
            raise MetabaseError(method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` with query ``params``."""
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: dict) -> Any:
        """POST a JSON ``body`` to ``path``."""
        return self.request("POST", path, json=body)

    def put(self, path: str, body: dict) -> Any:
        """PUT a JSON ``body`` to ``path``."""
        return self.request("PUT", path, json=body)

    # --- start-up and authentication ---

    def is_healthy(self) -> tuple[bool, str]:
        """Whether ``/api/health`` answers ``{"status": "ok"}``, and what it said otherwise."""
        import requests

        try:
            response = self._http.get(f"{self.base_url}/api/health", timeout=min(self.timeout_s, 10.0))
        except requests.RequestException as exc:
            return False, f"{type(exc).__name__}: {exc}"
        if response.ok and response.json().get("status") == "ok":
            return True, "ok"
        return False, f"HTTP {response.status_code}: {response.text[:200]}"

    def wait_until_healthy(self, timeout_s: float = 600.0, interval_s: float = 2.0) -> None:
        """Poll ``/api/health`` until Metabase is up (it needs a minute or two to migrate its database on start).

        Raises:
            MetabaseUnavailable: If it is not healthy after ``timeout_s`` seconds.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            healthy, detail = self.is_healthy()
            if healthy:
                return
            if time.monotonic() >= deadline:
                raise MetabaseUnavailable(
                    f"Metabase at {self.base_url} not healthy after {timeout_s:.0f}s (last answer: {detail})"
                )
            log.info("waiting for Metabase at %s: %s", self.base_url, detail)
            time.sleep(min(interval_s, max(deadline - time.monotonic(), 0.0)))

    def session_properties(self) -> dict:
        """The public settings, among them ``has-user-setup`` and, before setup, ``setup-token``."""
        return self.get("/api/session/properties")

    def _use_session(self, session_id: str) -> None:
        self._http.headers[SESSION_HEADER] = session_id

    def setup(self, token: str, email: str, password: str, site_name: str) -> None:
        """Create the first admin user (first-time setup) and use the session it returns."""
        body = {
            "token": token,
            "user": {"email": email, "password": password, "first_name": "Lakehouse", "last_name": "Admin"},
            # Only site_name (and site_locale) are setup settings; anonymous tracking is switched off on the server
            # (MB_ANON_TRACKING_ENABLED=false in docker-compose.override.yml), not here, where it would be ignored.
            "prefs": {"site_name": site_name},
        }
        self._use_session(self.post("/api/setup", body)["id"])

    def login(self, email: str, password: str) -> None:
        """Open a session for the user and send its token with every later request."""
        self._use_session(self.post("/api/session", {"username": email, "password": password})["id"])
