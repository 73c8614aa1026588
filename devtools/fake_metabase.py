"""A local fake of exactly the Metabase REST endpoints the provisioning calls, keeping its state in memory.

Behaviour copied from Metabase (v0.59, the version docker-compose.override.yml pins): session token in
``X-Metabase-Session`` (401 without a valid one), ``/api/setup`` only while no user exists, with Metabase's default
("normal") password complexity and an e-mail address check, GET /api/card returning MBQL 5 unless
``legacy-mbql=true``, dashcards replaced as a whole by PUT /api/dashboard/:id (negative ids create, missing ones are
deleted), passwords never returned, native template tags checked as Metabase's schema does (map keys = tag names, a
display name, a template-tag type of v0.59), card parameters aimed at an existing variable tag and stripped of keys
Metabase's parameter schema does not declare (as later 0.59 patch releases do), archived cards and dashboards left
out of collection items unless ``archived=true`` asks for them only. Any other endpoint answers 404.

``check_request`` (the tests pass a validator built from Metabase's OpenAPI description) sees every routed request
first; a request it finds problems with is answered 400, as Metabase answers a request its schema refuses, and kept
in ``invalid``.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ADMIN_EMAIL = "admin@example.com"
# The fake's admin, made up per process; the digit meets Metabase's default password complexity.
ADMIN_PASSWORD = secrets.token_urlsafe(16) + "-7"
VERSION = "v0.59.29"
PUBLIC = {("GET", "/api/health"), ("GET", "/api/session/properties"), ("POST", "/api/setup"), ("POST", "/api/session")}
# Metabase v0.59's template-tag types (metabase.lib.schema.template-tag/type).
TAG_TYPES = {"snippet", "card", "dimension", "number", "text", "date", "boolean", "temporal-unit"}
# The keys of Metabase's parameter schema (metabase.parameters.schema/parameter); others are stripped on save.
PARAMETER_KEYS = {"filteringParameters", "mappings", "sectionId", "values_source_config", "id", "name", "slug",
                  "values_query_type", "type", "temporal_units", "target", "values_source_type", "default"}  # fmt: skip
# Metabase's default password complexity ("normal": 6 characters, one a digit) and a few of the common passwords
# it refuses whatever their complexity.
PASSWORD_MIN_LENGTH = 6
COMMON_PASSWORDS = {"password1", "12345678", "123456", "qwerty1", "abc123", "passw0rd", "letmein1", "welcome1"}
# Metabase's e-mail check accepts local@domain.tld with a dotted domain.
EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
)


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _require(condition: bool, message: str, status: int = 400) -> None:
    if not condition:
        raise HTTPError(status, message)


def _check_template_tags(tags: object) -> None:
    _require(isinstance(tags, dict), "template-tags must be a map")
    for name, tag in tags.items():
        _require(isinstance(tag, dict) and tag.get("name") == name, "keys in template tag map must match the :name")
        _require(bool(str(tag.get("display-name") or "").strip()), f"template tag {name}: display-name required")
        _require(tag.get("type") in TAG_TYPES, f"template tag {name}: invalid type {tag.get('type')!r}")
        _require(isinstance(tag.get("id"), str) and bool(tag["id"]), f"template tag {name}: id required")
        _require(isinstance(tag.get("required", False), bool), f"template tag {name}: required must be a boolean")


def _check_password(password: str) -> None:
    _require(
        len(password) >= PASSWORD_MIN_LENGTH and any(ch.isdigit() for ch in password),
        f"password: must be at least {PASSWORD_MIN_LENGTH} characters long and include at least 1 digit",
    )
    _require(password.lower() not in COMMON_PASSWORDS, "password: password is too common.")


def _check_parameters(parameters: object, tags: dict) -> None:
    _require(isinstance(parameters, list), "parameters must be a list")
    for parameter in parameters:
        _require(isinstance(parameter, dict) and bool(parameter.get("id")), "parameter id required")
        _require(bool(parameter.get("type")), "parameter type required")
        target = parameter.get("target")
        ok = isinstance(target, list) and len(target) == 2 and target[0] in ("variable", "dimension")
        ok = ok and isinstance(target[1], list) and len(target[1]) == 2 and target[1][0] == "template-tag"
        ok = ok and target[1][1] in tags
        _require(ok, f"parameter {parameter.get('id')}: target must name a template tag of the query")


class FakeMetabase:
    """In-memory Metabase; ``start()`` serves it on a free local port."""

    def __init__(
        self,
        *,
        has_user_setup: bool = True,
        healthy: bool = True,
        unhealthy_polls: int = 0,
        check_request: Callable[[str, str, dict, object], list[str]] | None = None,
    ):
        self.users = {ADMIN_EMAIL: ADMIN_PASSWORD} if has_user_setup else {}
        self.setup_token = None if has_user_setup else str(uuid.uuid4())
        self.healthy = healthy
        self.unhealthy_polls = unhealthy_polls  # health checks answered 503 before turning healthy
        self.sessions: set[str] = set()
        self.databases: dict[int, dict] = {}
        self.collections: dict[int, dict] = {}
        self.cards: dict[int, dict] = {}
        self.dashboards: dict[int, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.check_request = check_request
        self.invalid: list[str] = []  # what check_request found, one entry per refused request
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- test helpers ---

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def writes(self) -> list[tuple[str, str]]:
        """Requests that change state (logging in does not)."""
        return [(m, p) for m, p in self.requests if m != "GET" and p != "/api/session"]

    def state(self) -> dict:
        """A deep copy of everything stored, to compare runs."""
        with self._lock:
            return copy.deepcopy(
                {
                    "users": self.users,
                    "databases": self.databases,
                    "collections": self.collections,
                    "cards": self.cards,
                    "dashboards": self.dashboards,
                }
            )

    def start(self) -> FakeMetabase:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output quiet
                pass

            def _handle(self):
                status, body = fake.handle(self.command, self.path, self.headers, self._body())
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- dispatch ---

    def handle(self, method: str, raw_path: str, headers, raw_body: bytes) -> tuple[int, object]:
        split = urlsplit(raw_path)
        path, query = split.path, parse_qs(split.query)
        with self._lock:
            self.requests.append((method, path))
            for route_method, pattern, handler in ROUTES:
                match = re.fullmatch(pattern, path)
                if route_method != method or not match:
                    continue
                if (method, path) not in PUBLIC and headers.get("X-Metabase-Session") not in self.sessions:
                    return 401, "Unauthenticated"
                body = json.loads(raw_body) if raw_body else {}
                problems = self.check_request(method, path, query, body or None) if self.check_request else []
                if problems:
                    self.invalid.extend(problems)
                    return 400, {"message": "; ".join(problems)}
                try:
                    return 200, handler(self, *map(int, match.groups()), query=query, body=body)
                except HTTPError as exc:
                    return exc.status, {"message": str(exc)}
            return 404, {"message": f"no endpoint {method} {path}"}

    def _new_session(self) -> dict:
        session = str(uuid.uuid4())
        self.sessions.add(session)
        return {"id": session}

    def _get(self, table: dict, object_id: int) -> dict:
        _require(object_id in table, f"object {object_id} not found", 404)
        return table[object_id]

    # --- endpoints ---

    def health(self, query, body):
        if not self.healthy:
            raise HTTPError(503, "initializing")
        if self.unhealthy_polls > 0:
            self.unhealthy_polls -= 1
            raise HTTPError(503, "initializing")
        return {"status": "ok"}

    def session_properties(self, query, body):
        return {"has-user-setup": bool(self.users), "setup-token": self.setup_token, "version": {"tag": VERSION}}

    def setup(self, query, body):
        _require(not self.users, "The /api/setup route can only be used to create the first user", 403)
        _require(body.get("token") == self.setup_token, "Token does not match the setup token.")
        user = body.get("user") or {}
        _require(bool(user.get("email")) and bool(user.get("password")), "user email and password required")
        _require(bool(EMAIL.match(str(user["email"]))), "email: value must be a valid email address.")
        _check_password(str(user["password"]))
        _require(bool((body.get("prefs") or {}).get("site_name")), "prefs.site_name required")
        self.users[user["email"]] = user["password"]
        self.setup_token = None
        return self._new_session()

    def login(self, query, body):
        if self.users.get(body.get("username")) != body.get("password") or not body.get("password"):
            raise HTTPError(401, "did not match stored password")
        return self._new_session()

    def list_databases(self, query, body):
        return {"data": [self._public_database(d) for d in self.databases.values()], "total": len(self.databases)}

    def _public_database(self, database: dict) -> dict:
        public = copy.deepcopy(database)
        public["details"]["password"] = "**MetabasePass**"  # noqa: S105 - Metabase's mask, not a secret
        return public

    def create_database(self, query, body):
        _require(bool(body.get("name")) and bool(body.get("engine")), "name and engine required")
        _require(isinstance(body.get("details"), dict), "details required")
        database = {"id": next(self._ids), "name": body["name"], "engine": body["engine"], "details": body["details"]}
        self.databases[database["id"]] = database
        return self._public_database(database)

    def get_database(self, database_id, query, body):
        return self._public_database(self._get(self.databases, database_id))

    def update_database(self, database_id, query, body):
        database = self._get(self.databases, database_id)
        database.update({k: v for k, v in body.items() if k in ("name", "engine", "details")})
        return self._public_database(database)

    def list_collections(self, query, body):
        root = {"id": "root", "name": "Our analytics", "location": None, "personal_owner_id": None}
        personal = {"id": 999, "name": "Admin's Personal Collection", "location": "/", "personal_owner_id": 1}
        return [root, personal, *self.collections.values()]

    def create_collection(self, query, body):
        _require(bool(body.get("name")), "name required")
        collection = {
            "id": next(self._ids),
            "name": body["name"],
            "description": body.get("description"),
            "location": "/",
            "personal_owner_id": None,
            "archived": False,
        }
        self.collections[collection["id"]] = collection
        return collection

    def update_collection(self, collection_id, query, body):
        collection = self._get(self.collections, collection_id)
        collection.update({k: v for k, v in body.items() if k in ("name", "description", "archived")})
        return collection

    def collection_items(self, collection_id, query, body):
        self._get(self.collections, collection_id)
        models = set(query.get("models", ["card", "dashboard"]))
        # archived=true lists the archived items instead of the others (what Metabase's trash keeps per collection).
        archived = query.get("archived", ["false"])[-1] == "true"
        items = [
            {"id": obj["id"], "name": obj["name"], "model": model, "description": obj.get("description")}
            for model, table in (("card", self.cards), ("dashboard", self.dashboards))
            if model in models
            for obj in table.values()
            if obj["collection_id"] == collection_id and bool(obj.get("archived")) == archived
        ]
        return {"data": items, "total": len(items), "models": sorted(models)}

    def _check_card(self, body: dict, creating: bool) -> None:
        if creating:
            for key in ("name", "dataset_query", "display", "visualization_settings"):
                _require(key in body, f"{key} required")
        if "description" in body and creating:
            _require(body["description"] is None or bool(str(body["description"]).strip()), "blank description")
        if "dataset_query" in body:
            _require(body["dataset_query"].get("database") in self.databases, "unknown database")
            tags = (body["dataset_query"].get("native") or {}).get("template-tags") or {}
            _check_template_tags(tags)
            _check_parameters(body.get("parameters") or [], tags)
        if body.get("collection_id") is not None:
            self._get(self.collections, body["collection_id"])

    @staticmethod
    def _saved_parameters(body: dict) -> dict:
        if isinstance(body.get("parameters"), list):
            body = {
                **body,
                "parameters": [{k: v for k, v in p.items() if k in PARAMETER_KEYS} for p in body["parameters"]],
            }
        return body

    def create_card(self, query, body):
        self._check_card(body, creating=True)
        body = self._saved_parameters(body)
        card = {"id": next(self._ids), "archived": False, "collection_id": None, "description": None, "parameters": [],
                **body}  # fmt: skip
        self.cards[card["id"]] = card
        return card

    def get_card(self, card_id, query, body):
        card = copy.deepcopy(self._get(self.cards, card_id))
        legacy = card["dataset_query"]
        if query.get("legacy-mbql") != ["true"] and legacy.get("type") == "native":
            card["dataset_query"] = {
                "lib/type": "mbql/query",
                "database": legacy["database"],
                "stages": [
                    {
                        "lib/type": "mbql.stage/native",
                        "native": legacy["native"]["query"],
                        "template-tags": legacy["native"].get("template-tags") or {},
                    }
                ],
            }
        return card

    def update_card(self, card_id, query, body):
        card = self._get(self.cards, card_id)
        self._check_card(body, creating=False)
        card.update(self._saved_parameters(body))
        return card

    def create_dashboard(self, query, body):
        _require(bool(body.get("name")), "name required")
        if body.get("collection_id") is not None:
            self._get(self.collections, body["collection_id"])
        dashboard = {
            "id": next(self._ids),
            "name": body["name"],
            "description": body.get("description"),
            "collection_id": body.get("collection_id"),
            "archived": False,
            "dashcards": [],
            "tabs": [],
        }
        self.dashboards[dashboard["id"]] = dashboard
        return dashboard

    def get_dashboard(self, dashboard_id, query, body):
        return self._get(self.dashboards, dashboard_id)

    def _new_dashcards(self, dashboard: dict, dashcards: list) -> list[dict]:
        own = {d["id"] for d in dashboard["dashcards"]}
        result = []
        for dashcard in dashcards:
            _require(isinstance(dashcard.get("id"), int), "dashcard id required")
            for key, minimum in (("size_x", 1), ("size_y", 1), ("row", 0), ("col", 0)):
                _require(isinstance(dashcard.get(key), int) and dashcard[key] >= minimum, f"bad dashcard {key}")
            _require(dashcard.get("card_id") in self.cards, "unknown card")
            _require(dashcard["id"] < 0 or dashcard["id"] in own, "dashcard of another dashboard")
            dashcard_id = dashcard["id"] if dashcard["id"] > 0 else next(self._ids)
            result.append({**dashcard, "id": dashcard_id, "dashboard_id": dashboard["id"], "dashboard_tab_id": None})
        return result

    def update_dashboard(self, dashboard_id, query, body):
        dashboard = self._get(self.dashboards, dashboard_id)
        if "dashcards" in body:
            dashboard["dashcards"] = self._new_dashcards(dashboard, body["dashcards"])
        dashboard.update({k: v for k, v in body.items() if k in ("name", "description", "collection_id", "archived")})
        return dashboard


ROUTES = [
    ("GET", r"/api/health", FakeMetabase.health),
    ("GET", r"/api/session/properties", FakeMetabase.session_properties),
    ("POST", r"/api/setup", FakeMetabase.setup),
    ("POST", r"/api/session", FakeMetabase.login),
    ("GET", r"/api/database", FakeMetabase.list_databases),
    ("POST", r"/api/database", FakeMetabase.create_database),
    ("GET", r"/api/database/(\d+)", FakeMetabase.get_database),
    ("PUT", r"/api/database/(\d+)", FakeMetabase.update_database),
    ("GET", r"/api/collection", FakeMetabase.list_collections),
    ("POST", r"/api/collection", FakeMetabase.create_collection),
    ("PUT", r"/api/collection/(\d+)", FakeMetabase.update_collection),
    ("GET", r"/api/collection/(\d+)/items", FakeMetabase.collection_items),
    ("POST", r"/api/card", FakeMetabase.create_card),
    ("GET", r"/api/card/(\d+)", FakeMetabase.get_card),
    ("PUT", r"/api/card/(\d+)", FakeMetabase.update_card),
    ("POST", r"/api/dashboard", FakeMetabase.create_dashboard),
    ("GET", r"/api/dashboard/(\d+)", FakeMetabase.get_dashboard),
    ("PUT", r"/api/dashboard/(\d+)", FakeMetabase.update_dashboard),
]
