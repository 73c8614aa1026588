"""The REST API's settings, read once from the environment (no secrets in code; every default is local-only)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
SCOPES = frozenset({"read", "ingest"})
DEFAULT_SCOPES = frozenset({"read"})


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def parse_keys(value: str) -> dict[str, frozenset[str]]:
    """``digest`` or ``digest:scope+scope`` entries, comma-separated -> digest: scopes (a bare digest: ``read``)."""
    keys: dict[str, frozenset[str]] = {}
    for entry in _split(value):
        digest, _, scopes = entry.partition(":")
        names = frozenset(s.strip() for s in scopes.split("+") if s.strip()) if scopes else DEFAULT_SCOPES
        if not names or names - SCOPES:
            raise ValueError(f"API key scopes must be some of {sorted(SCOPES)}, joined with '+'")
        keys[digest.strip().lower()] = keys.get(digest.strip().lower(), frozenset()) | names
    return keys


@dataclass(frozen=True)
class Settings:
    """What the API needs to run.

    Environment variables (all optional except the keys, without which every data route answers 401):

    - ``LAKEHOUSE_API_KEY_HASHES``: comma-separated SHA-256 hex digests of the accepted API keys
      (``python -m include.api.auth new`` makes a key and prints its digest), each with its scopes after a colon,
      joined with ``+``: ``<digest>:read+ingest``; a bare digest has scope ``read`` (the data routes), ``ingest``
      allows uploads.
    - ``LAKEHOUSE_API_EVENTS_DSN``: libpq DSN of the analytics PostgreSQL database holding the ingestions and their
      events (``ingest`` schema, LISTEN/NOTIFY); empty = no upload or events routes work (503).
    - ``LAKEHOUSE_API_S3_ENDPOINT`` / ``_S3_ACCESS_KEY_ID`` / ``_S3_SECRET_ACCESS_KEY`` / ``_S3_REGION``: the S3 store
      uploads are streamed to (default: boto3's own configuration); ``LAKEHOUSE_API_LANDING_BUCKET`` (landing);
      ``LAKEHOUSE_API_MAX_UPLOAD_BYTES`` (10 GiB).
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
    key_scopes: Mapping[str, frozenset[str]] = field(default_factory=dict)
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
    events_dsn: str = field(default="", repr=False)
    s3_endpoint: str = ""
    s3_access_key_id: str = field(default="", repr=False)
    s3_secret_access_key: str = field(default="", repr=False)
    s3_region: str = "us-east-1"
    landing_bucket: str = "landing"
    max_upload_bytes: int = 10 * 1024**3

    def scopes(self, digest: str) -> frozenset[str]:
        """The scopes of an accepted key (by digest): those configured, else ``read``."""
        return self.key_scopes.get(digest, DEFAULT_SCOPES)

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

        keys = parse_keys(env.get("LAKEHOUSE_API_KEY_HASHES", ""))
        return cls(
            key_hashes=frozenset(keys),
            key_scopes=keys,
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
            events_dsn=get("EVENTS_DSN", ""),
            s3_endpoint=get("S3_ENDPOINT", ""),
            s3_access_key_id=get("S3_ACCESS_KEY_ID", ""),
            s3_secret_access_key=get("S3_SECRET_ACCESS_KEY", ""),
            s3_region=get("S3_REGION", defaults.s3_region),
            landing_bucket=get("LANDING_BUCKET", defaults.landing_bucket),
            max_upload_bytes=int(get("MAX_UPLOAD_BYTES", defaults.max_upload_bytes)),
        )
