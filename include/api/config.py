"""The REST API's settings, read once from the environment (no secrets in code; every default is local-only)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """What the API needs to run.

    Environment variables (all optional except the keys, without which every data route answers 401):

    - ``LAKEHOUSE_API_KEY_HASHES``: comma-separated SHA-256 hex digests of the accepted API keys
      (``python -m include.api.auth new`` makes a key and prints its digest).
    - ``LAKEHOUSE_API_DB_HOST``/``_PORT``/``_USER``/``_PASSWORD``/``_NAME``: the read-only TiDB (MySQL protocol)
      account; defaults 127.0.0.1, 4000, lakehouse_api, empty, lakehouse.
    - ``LAKEHOUSE_API_DB_POOL_SIZE`` (8): connections per worker process, never more;
      ``LAKEHOUSE_API_DB_POOL_TIMEOUT`` (2 s): how long a request waits for one before a 503;
      ``LAKEHOUSE_API_DB_CONNECT_TIMEOUT`` (3 s).
    - ``LAKEHOUSE_API_REQUEST_TIMEOUT`` (10 s): a request still running then gets a 504; the same bound is set
      as the database statement timeout.
    - ``LAKEHOUSE_API_CORS_ORIGINS``: comma-separated allowed browser origins (``*`` for any); empty = no CORS.
    - ``LAKEHOUSE_API_MAX_PAGE_SIZE`` (1000), ``LAKEHOUSE_API_DEFAULT_PAGE_SIZE`` (100).
    """

    key_hashes: frozenset[str] = field(default_factory=frozenset)
    db_host: str = "127.0.0.1"
    db_port: int = 4000
    db_user: str = "lakehouse_api"
    db_password: str = field(default="", repr=False)
    db_name: str = "lakehouse"
    pool_size: int = 8
    pool_timeout_s: float = 2.0
    connect_timeout_s: float = 3.0
    request_timeout_s: float = 10.0
    cors_origins: tuple[str, ...] = ()
    max_page_size: int = 1000
    default_page_size: int = 100

    def __post_init__(self) -> None:
        bad = [digest for digest in self.key_hashes if not _SHA256_HEX.match(digest)]
        if bad:
            raise ValueError("LAKEHOUSE_API_KEY_HASHES must hold lower-case SHA-256 hex digests (64 characters)")
        if not 1 <= self.default_page_size <= self.max_page_size:
            raise ValueError("the default page size must be between 1 and the maximum page size")
        if self.pool_size < 1 or self.request_timeout_s <= 0 or self.pool_timeout_s <= 0:
            raise ValueError("pool size, pool timeout and request timeout must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (default ``os.environ``); unset variables keep their defaults."""
        env = os.environ if env is None else env
        defaults = cls()

        def get(name: str, default: object) -> str:
            return env.get(f"LAKEHOUSE_API_{name}", str(default))

        return cls(
            key_hashes=frozenset(digest.lower() for digest in _split(env.get("LAKEHOUSE_API_KEY_HASHES", ""))),
            db_host=get("DB_HOST", defaults.db_host),
            db_port=int(get("DB_PORT", defaults.db_port)),
            db_user=get("DB_USER", defaults.db_user),
            db_password=get("DB_PASSWORD", ""),
            db_name=get("DB_NAME", defaults.db_name),
            pool_size=int(get("DB_POOL_SIZE", defaults.pool_size)),
            pool_timeout_s=float(get("DB_POOL_TIMEOUT", defaults.pool_timeout_s)),
            connect_timeout_s=float(get("DB_CONNECT_TIMEOUT", defaults.connect_timeout_s)),
            request_timeout_s=float(get("REQUEST_TIMEOUT", defaults.request_timeout_s)),
            cors_origins=_split(get("CORS_ORIGINS", "")),
            max_page_size=int(get("MAX_PAGE_SIZE", defaults.max_page_size)),
            default_page_size=int(get("DEFAULT_PAGE_SIZE", defaults.default_page_size)),
        )
