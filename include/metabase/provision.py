"""Provision Metabase from the dashboard specs: setup, analytics database, collection, questions, dashboards.

Everything is matched by name and compared before writing, so a second run with the same specs sends no write
request. The specs own what they name: edits made in Metabase to a provisioned question or dashboard are
overwritten; other questions and dashboards are left alone.

CLI: ``python -m include.metabase.provision`` (see ``main`` for the environment it reads).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from include.metabase.client import MetabaseClient
from include.metabase.specs import DASHBOARDS_DIR, PARAMETER_TYPES, CardSpec, DashboardSpec, Parameter, load_dashboards

log = logging.getLogger(__name__)

COLLECTION_NAME = "Lakehouse"
COLLECTION_DESCRIPTION = "Provisioned from include/metabase/dashboards: edits made here are overwritten."
SITE_NAME = "Lakehouse"
DATABASE_NAME = "analytics"
# Metabase never returns the password, so only these details can be compared with what is registered.
COMPARED_DETAILS = ("host", "port", "dbname", "user", "ssl")
# Template tag ids derive from the card and tag names, so a second run sends the same ids (nothing to update).
TAG_NAMESPACE = uuid.UUID("5b0c2f6e-8f0e-4c1a-9d43-6c7a1f2e9b10")


@dataclass
class Summary:
    """What a provisioning run did, one ``"<kind> '<name>'"`` entry per object."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything was created or updated."""
        return bool(self.created or self.updated)

    def as_dict(self) -> dict[str, list[str]]:
        """A JSON-friendly copy (for XCom)."""
        return {"created": list(self.created), "updated": list(self.updated), "unchanged": list(self.unchanged)}

    def __str__(self) -> str:
        parts = [f"{len(self.created)} created", f"{len(self.updated)} updated", f"{len(self.unchanged)} unchanged"]
        lines = [", ".join(parts)]
        lines += [f"  created   {item}" for item in self.created]
        lines += [f"  updated   {item}" for item in self.updated]
        return "\n".join(lines)


def provision(
    base_url: str,
    admin_email: str,
    admin_password: str,
    database: Mapping,
    dashboards_dir: Path | str = DASHBOARDS_DIR,
    *,
    collection_name: str = COLLECTION_NAME,
    site_name: str = SITE_NAME,
    health_timeout_s: float = 600.0,
    poll_interval_s: float = 2.0,
) -> Summary:
    """Make Metabase match the dashboard specs; idempotent.

    Args:
        base_url: Metabase's root URL, e.g. ``http://metabase:3000``.
        admin_email: The admin user; created by first-time setup when Metabase has no user yet.
        admin_password: Its password.
        database: The analytics PostgreSQL database: ``host``, ``port``, ``dbname``, ``user``, ``password``, and
            optionally ``ssl`` (default False) and ``name`` (its name in Metabase, default ``analytics``).
        dashboards_dir: The folder of dashboard files.
        collection_name: The collection holding the questions and dashboards.
        site_name: Metabase's site name, set by first-time setup only.
        health_timeout_s: How long to wait for Metabase to report healthy.
        poll_interval_s: Pause between health checks.

    Returns:
        What was created, updated and left unchanged.

    Raises:
        SpecError: If a dashboard file is invalid (checked before any request).
        MetabaseUnavailable: If Metabase is not healthy within ``health_timeout_s``.
        MetabaseError: If an API call fails.
    """
    dashboards = load_dashboards(dashboards_dir)
    summary = Summary()
    with MetabaseClient(base_url) as client:
        client.wait_until_healthy(health_timeout_s, poll_interval_s)
        _authenticate(client, admin_email, admin_password, site_name, summary)
        database_id = _ensure_database(client, database, summary)
        collection_id = _ensure_collection(client, collection_name, summary)
        cards, boards = _collection_items(client, collection_id)
        card_ids: dict[str, int] = {}
        for card in (card for dashboard in dashboards for card in dashboard.cards):
            card_ids[card.name] = _ensure_card(client, card, cards.get(card.name), collection_id, database_id, summary)
        for dashboard in dashboards:
            _ensure_dashboard(client, dashboard, boards.get(dashboard.name), collection_id, card_ids, summary)
    log.info("Metabase provisioned: %s", summary)
    return summary


def _collection_items(client: MetabaseClient, collection_id: int) -> tuple[dict[str, int], dict[str, int]]:
    """The collection's cards and dashboards by name: the active ones, else archived ones, which are then restored.

    An object archived in the UI (moved to the trash) is not among the collection's items; looking only there would
    create a duplicate on every run while the archived one stays in the trash.
    """
    found: dict[str, dict[str, int]] = {"card": {}, "dashboard": {}}
    for archived in ("false", "true"):
        path = f"/api/collection/{collection_id}/items"
        items = client.get(path, models=["card", "dashboard"], archived=archived)["data"]
        for model, ids in found.items():
            for name, object_id in _ids_by_name(item for item in items if item.get("model") == model).items():
                ids.setdefault(name, object_id)
    return found["card"], found["dashboard"]


def _ids_by_name(items) -> dict[str, int]:
    # Should a name exist twice (made by hand), the oldest object is the one kept in line with the spec.
    ids: dict[str, int] = {}
    for item in sorted(items, key=lambda item: item["id"]):
        ids.setdefault(item["name"], item["id"])
    return ids


def _authenticate(client: MetabaseClient, email: str, password: str, site_name: str, summary: Summary) -> None:
    properties = client.session_properties()
    if properties.get("has-user-setup"):
        client.login(email, password)
        return
    token = properties.get("setup-token")
    if not token:
        raise RuntimeError("Metabase has no user yet but published no setup token; cannot complete setup")
    client.setup(token, email, password, site_name)
    summary.created.append(f"admin user {email!r}")


def _database_body(database: Mapping) -> dict:
    missing = [key for key in ("host", "port", "dbname", "user", "password") if database.get(key) in (None, "")]
    if missing:
        raise ValueError(f"analytics database is missing {', '.join(missing)}")
    details = {
        "host": database["host"],
        "port": int(database["port"]),
        "dbname": database["dbname"],
        "user": database["user"],
        "password": database["password"],
        "ssl": bool(database.get("ssl", False)),
    }
    return {"name": database.get("name") or DATABASE_NAME, "engine": "postgres", "details": details}


def _ensure_database(client: MetabaseClient, database: Mapping, summary: Summary) -> int:
    body = _database_body(database)
    label = f"database {body['name']!r}"
    listed = client.get("/api/database")
    # Older versions return a bare list, newer ones {"data": [...], "total": n}.
    existing = _ids_by_name(listed["data"] if isinstance(listed, dict) else listed).get(body["name"])
    if existing is None:
        summary.created.append(label)
        return client.post("/api/database", body)["id"]
    current = client.get(f"/api/database/{existing}")
    details = current.get("details") or {}
    if current.get("engine") == body["engine"] and all(
        str(details.get(key)) == str(body["details"][key]) for key in COMPARED_DETAILS
    ):
        summary.unchanged.append(label)
    else:
        client.put(f"/api/database/{existing}", {"engine": body["engine"], "details": body["details"]})
        summary.updated.append(label)
    return existing


def _ensure_collection(client: MetabaseClient, name: str, summary: Summary) -> int:
    label = f"collection {name!r}"
    top_level = [
        c
        for c in client.get("/api/collection")
        # The list also holds the root ("id": "root") and personal collections; ours is a top-level one.
        if isinstance(c.get("id"), int)
        and c.get("personal_owner_id") is None
        and not c.get("archived")
        and c.get("location", "/") == "/"
    ]
    existing = _ids_by_name(top_level).get(name)
    if existing is None:
        summary.created.append(label)
        return client.post("/api/collection", {"name": name, "description": COLLECTION_DESCRIPTION})["id"]
    current = next(c for c in top_level if c["id"] == existing)
    if current.get("description") == COLLECTION_DESCRIPTION:
        summary.unchanged.append(label)
    else:
        client.put(f"/api/collection/{existing}", {"description": COLLECTION_DESCRIPTION})
        summary.updated.append(label)
    return existing


def _tag_id(card: CardSpec, parameter: Parameter) -> str:
    return str(uuid.uuid5(TAG_NAMESPACE, f"{card.name}\n{parameter.name}"))


def template_tags(card: CardSpec) -> dict[str, dict]:
    """The native query's ``template-tags``: one required variable per parameter, with its default.

    ``required`` belongs here, on the tag (Metabase's template-tag schema declares it), not on the card parameter.
    """
    return {
        parameter.name: {
            "id": _tag_id(card, parameter),
            "name": parameter.name,
            "display-name": parameter.display_name,
            "type": parameter.type,
            "required": True,
            "default": parameter.default,
        }
        for parameter in card.parameters
    }


def card_parameters(card: CardSpec) -> list[dict]:
    """The card's ``parameters``: the filter widgets of its template tags (what the query editor would save).

    Only keys Metabase's parameter schema declares: later 0.59 patch releases strip the others (``required`` among
    them), so a card sending one would read back different and be rewritten on every run.
    """
    return [
        {
            "id": _tag_id(card, parameter),
            "type": PARAMETER_TYPES[parameter.type],
            "target": ["variable", ["template-tag", parameter.name]],
            "name": parameter.display_name,
            "slug": parameter.name,
            "default": parameter.default,
        }
        for parameter in card.parameters
    ]


def _card_body(card: CardSpec, collection_id: int, database_id: int) -> dict:
    return {
        "name": card.name,
        "description": card.description,
        "display": card.display,
        "visualization_settings": card.visualization_settings,
        "collection_id": collection_id,
        "dataset_query": {
            "database": database_id,
            "type": "native",
            "native": {"query": card.sql, "template-tags": template_tags(card)},
        },
        "parameters": card_parameters(card),
    }


def _native_query(dataset_query: Mapping | None) -> tuple[object, object, Mapping]:
    """(database id, SQL, template tags) of a native query in either the legacy (MBQL 4) or the MBQL 5 shape."""
    query = dataset_query or {}
    if query.get("stages"):
        # MBQL 5, what GET /api/card returns since v0.57 unless asked for legacy MBQL.
        stage = query["stages"][0]
        return query.get("database"), stage.get("native"), stage.get("template-tags") or {}
    native = query.get("native") or {}
    return query.get("database"), native.get("query"), native.get("template-tags") or {}


def _same(expected: object, current: object) -> bool:
    """Whether ``current`` holds ``expected``: every key of a mapping (Metabase may add its own), every item of a
    list; numbers compared by value, so a default read back as ``"-74.02"`` or ``[-74.02]`` still matches."""
    if isinstance(expected, Mapping):
        return isinstance(current, Mapping) and all(_same(v, current.get(k)) for k, v in expected.items())
    if isinstance(expected, list):
        return (
            isinstance(current, list)
            and len(current) == len(expected)
            and all(_same(e, c) for e, c in zip(expected, current, strict=True))
        )
    if isinstance(current, list) and len(current) == 1 and not isinstance(expected, list):
        return _same(expected, current[0])
    if isinstance(expected, int | float) and not isinstance(expected, bool) and isinstance(current, int | float | str):
        try:
            return float(current) == float(expected)
        except ValueError:
            return False
    return expected == current


def _card_differs(current: Mapping, body: Mapping) -> bool:
    native = body["dataset_query"]["native"]
    database, sql, tags = _native_query(current.get("dataset_query"))
    return (
        any(current.get(key) != body[key] for key in ("description", "display", "collection_id"))
        or (current.get("visualization_settings") or {}) != body["visualization_settings"]
        or bool(current.get("archived"))
        or (database, sql) != (body["dataset_query"]["database"], native["query"])
        or set(tags) != set(native["template-tags"])
        or not _same(native["template-tags"], dict(tags))
        or not _same(body["parameters"], list(current.get("parameters") or []))
    )


def _ensure_card(
    client: MetabaseClient,
    card: CardSpec,
    existing: int | None,
    collection_id: int,
    database_id: int,
    summary: Summary,
) -> int:
    label = f"card {card.name!r}"
    body = _card_body(card, collection_id, database_id)
    if existing is None:
        summary.created.append(label)
        return client.post("/api/card", {**body, "type": "question"})["id"]
    # legacy-mbql asks v0.57+ for the MBQL 4 shape.
    current = client.get(f"/api/card/{existing}", **{"legacy-mbql": "true"})
    if _card_differs(current, body):
        client.put(f"/api/card/{existing}", {**body, "archived": False})
        summary.updated.append(label)
    else:
        summary.unchanged.append(label)
    return existing


def _layout_of(dashcards: list[Mapping]) -> list[tuple]:
    return sorted((d.get("card_id"), d["row"], d["col"], d["size_x"], d["size_y"]) for d in dashcards)


def _dashcards(dashboard: DashboardSpec, card_ids: Mapping[str, int], current: list[Mapping]) -> list[dict]:
    # Existing dashcards keep their ids (PUT updates them); new ones get negative ids; any dashcard left out is
    # deleted by Metabase.
    reusable = {}
    for dashcard in current:
        reusable.setdefault(dashcard.get("card_id"), dashcard["id"])
    return [
        {
            "id": reusable.get(card_ids[card.name], -(index + 1)),
            "card_id": card_ids[card.name],
            "row": card.layout.row,
            "col": card.layout.col,
            "size_x": card.layout.size_x,
            "size_y": card.layout.size_y,
            "parameter_mappings": [],
            "series": [],
            "visualization_settings": {},
        }
        for index, card in enumerate(dashboard.cards)
    ]


def _ensure_dashboard(
    client: MetabaseClient,
    dashboard: DashboardSpec,
    existing: int | None,
    collection_id: int,
    card_ids: Mapping[str, int],
    summary: Summary,
) -> None:
    label = f"dashboard {dashboard.name!r}"
    if existing is None:
        body = {"name": dashboard.name, "description": dashboard.description, "collection_id": collection_id}
        existing = client.post("/api/dashboard", body)["id"]
        client.put(f"/api/dashboard/{existing}", {"dashcards": _dashcards(dashboard, card_ids, [])})
        summary.created.append(label)
        return
    current = client.get(f"/api/dashboard/{existing}")
    dashcards = _dashcards(dashboard, card_ids, current.get("dashcards") or [])
    if (
        current.get("description") == dashboard.description
        and current.get("collection_id") == collection_id
        and not current.get("archived")
        and _layout_of(current.get("dashcards") or []) == _layout_of(dashcards)
    ):
        summary.unchanged.append(label)
        return
    # archived: False restores a dashboard archived in the UI.
    body = {"description": dashboard.description, "collection_id": collection_id, "dashcards": dashcards,
            "archived": False}  # fmt: skip
    client.put(f"/api/dashboard/{existing}", body)
    summary.updated.append(label)


# --- where the analytics database comes from ---


def database_from_connection(host: str, port: int | str | None, dbname: str, user: str, password: str) -> dict:
    """The ``database`` argument of ``provision`` from connection fields (port defaults to 5432)."""
    return {"host": host, "port": int(port or 5432), "dbname": dbname, "user": user, "password": password or ""}


def database_from_airflow(conn_id: str = "analytics_postgres") -> dict:
    """The ``database`` argument of ``provision`` from an Airflow connection (conn ``schema`` = database name)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    return database_from_connection(conn.host, conn.port, conn.schema, conn.login, conn.password)


def _parse_airflow_conn(value: str) -> dict:
    """An ``AIRFLOW_CONN_*`` value (JSON or URI) read without Airflow, which the compose service lacks."""
    if value.lstrip().startswith("{"):
        conn = json.loads(value)
        return database_from_connection(
            conn.get("host"), conn.get("port"), conn.get("schema"), conn.get("login"), conn.get("password")
        )
    uri = urlsplit(value)
    return database_from_connection(
        uri.hostname, uri.port, unquote(uri.path.lstrip("/")), unquote(uri.username or ""), unquote(uri.password or "")
    )


def database_from_env(env: Mapping[str, str] = os.environ) -> dict:
    """The analytics database from ``ANALYTICS_DB_HOST`` (``_PORT``, ``_NAME``, ``_USER``, ``_PASSWORD``).

    Falls back to ``AIRFLOW_CONN_ANALYTICS_POSTGRES`` (URI or JSON) when ``ANALYTICS_DB_HOST`` is unset.

    Raises:
        ValueError: If neither is set.
    """
    if env.get("ANALYTICS_DB_HOST"):
        return database_from_connection(
            env["ANALYTICS_DB_HOST"],
            env.get("ANALYTICS_DB_PORT"),
            env.get("ANALYTICS_DB_NAME", "analytics"),
            env.get("ANALYTICS_DB_USER", ""),
            env.get("ANALYTICS_DB_PASSWORD", ""),
        )
    if env.get("AIRFLOW_CONN_ANALYTICS_POSTGRES"):
        return _parse_airflow_conn(env["AIRFLOW_CONN_ANALYTICS_POSTGRES"])
    raise ValueError("set ANALYTICS_DB_HOST (with _PORT, _NAME, _USER, _PASSWORD) or AIRFLOW_CONN_ANALYTICS_POSTGRES")


def _required_env(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise ValueError(f"environment variable {name} is not set")
    return value


def main(argv: list[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    """CLI entry point.

    Reads ``METABASE_URL`` (default ``http://localhost:3000``), ``MB_ADMIN_EMAIL``, ``MB_ADMIN_PASSWORD``,
    ``METABASE_HEALTH_TIMEOUT`` (seconds, default 600) and the analytics database (see ``database_from_env``).
    ``--check`` only validates the dashboard files.
    """
    parser = argparse.ArgumentParser(prog="python -m include.metabase.provision", description=__doc__.splitlines()[0])
    parser.add_argument("--dashboards-dir", type=Path, default=DASHBOARDS_DIR)
    parser.add_argument("--check", action="store_true", help="validate the dashboard files and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.check:
            dashboards = load_dashboards(args.dashboards_dir)
            print(f"{len(dashboards)} dashboard files valid, {sum(len(d.cards) for d in dashboards)} cards")
            return 0
        summary = provision(
            env.get("METABASE_URL", "http://localhost:3000"),
            _required_env(env, "MB_ADMIN_EMAIL"),
            _required_env(env, "MB_ADMIN_PASSWORD"),
            database_from_env(env),
            args.dashboards_dir,
            health_timeout_s=float(env.get("METABASE_HEALTH_TIMEOUT", "600")),
        )
    except Exception as exc:
        # The CLI contract: a one-line reason on stderr and a non-zero exit, not a traceback.
        print(f"metabase provisioning failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
