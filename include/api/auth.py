"""API keys: clients send ``X-API-Key``; the server keeps only SHA-256 digests (``LAKEHOUSE_API_KEY_HASHES``).

``python -m include.api.auth new`` prints a fresh random key and its digest; ``python -m include.api.auth hash KEY``
prints the digest of an existing key. Keys are random 256-bit tokens, so an unsalted fast hash is enough: there is
nothing to guess a dictionary of.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from include.api.problems import ApiError

HEADER = "X-API-Key"
api_key_header = APIKeyHeader(
    name=HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key issued by the platform team. The server stores only its SHA-256 digest.",
)


def digest(key: str) -> str:
    """The SHA-256 hex digest of a key, as configured in ``LAKEHOUSE_API_KEY_HASHES``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_matches(key: str, hashes: frozenset[str]) -> bool:
    """Whether ``key``'s digest is one of ``hashes``; compares against every digest in constant time."""
    candidate = digest(key)
    found = False
    for known in hashes:
        found |= hmac.compare_digest(candidate, known)
    return found


async def require_api_key(request: Request, key: str | None = Security(api_key_header)) -> None:
    """The dependency of every ``/v1`` route: 401 without a valid key; records the key's id for the access log."""
    challenge = {"WWW-Authenticate": f'ApiKey header="{HEADER}"'}
    if not key:
        raise ApiError(
            401, "Missing API key", f"Send an API key in the {HEADER} header.", kind="unauthorized", headers=challenge
        )
    if not key_matches(key, request.app.state.settings.key_hashes):
        raise ApiError(
            401,
            "Invalid API key",
            f"The {HEADER} header does not hold a valid key.",
            kind="unauthorized",
            headers=challenge,
        )
    # The first hex digits of the digest name the key in the logs without revealing it.
    request.state.api_key_id = digest(key)[:8]
    request.state.api_key_scopes = request.app.state.settings.scopes(digest(key))


def require_scope(scope: str):
    """A dependency (after ``require_api_key``): 403 unless the request's key has ``scope``."""

    async def check(request: Request, key: str | None = Security(api_key_header)) -> None:
        await require_api_key(request, key)
        if scope not in request.state.api_key_scopes:
            raise ApiError(
                403,
                "Forbidden",
                f"This API key lacks the `{scope}` scope.",
                kind="forbidden",
            )

    return check


def main(argv: list[str]) -> int:
    """``new``: print a new key and its digest; ``hash KEY``: print the digest of KEY."""
    if argv[:1] == ["new"]:
        key = secrets.token_urlsafe(32)
        print(f"key:    {key}\nsha256: {digest(key)}")
        return 0
    if argv[:1] == ["hash"] and len(argv) == 2:
        print(digest(argv[1]))
        return 0
    print("usage: python -m include.api.auth new | hash KEY", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
