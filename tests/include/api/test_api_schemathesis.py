"""Schemathesis over the OpenAPI document: generated requests to every route, with every check Schemathesis has.

Each operation gets bounded positive (schema-valid) and negative (schema-invalid) examples, without shrinking, to
keep the suite quick on a shared machine. Schemathesis' pytest plugin does not run under pytest 9 yet, so its
strategies are driven by Hypothesis directly.

A positive request must be answered as valid (``positive_data_acceptance``), so the schema states every rule a
single parameter obeys (patterns, lengths, bounds). What OpenAPI cannot state across parameters is in the
parameters' descriptions and in each operation's documented 422; ``obey_documented_rules`` holds the positive
examples to those words, and the negative examples still break them.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
import schemathesis
from api_data import API_KEY, products_dataset
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.hooks import HookDispatcher, HookScope

from include.api.app import create_app
from include.api.config import Settings
from include.api.datasets import REGISTRY, Range
from include.api.questions import WEEKLY_PATH

pytestmark = pytest.mark.integration

# More for a deeper run: LAKEHOUSE_API_FUZZ_EXAMPLES=500.
EXAMPLES = int(os.environ.get("LAKEHOUSE_API_FUZZ_EXAMPLES", "30"))
DATASETS = (*REGISTRY, products_dataset())
SPEC = create_app(Settings(), datasets=DATASETS).openapi()
# The read routes answering JSON: the upload (POST) and the ingestion event streams (never-ending SSE, on the
# events database) are tested in test_api_ingest.py.
READ_PATHS = [path for path in sorted(SPEC["paths"]) if "get" in SPEC["paths"][path] and "/ingestions/" not in path]
CASES = [
    pytest.param(path, mode, id=f"{path}-{mode.value}")
    for path in READ_PATHS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # Without parameters there is nothing to make invalid.
    if mode == GenerationMode.POSITIVE or SPEC["paths"][path]["get"].get("parameters")
]
RANGES = {f"/v1/{d.path}": [f for f in d.filters if isinstance(f, Range)] for d in DATASETS}


def _comparable(value):
    """A bound as the API compares it: a number, or a date or timestamp (naive UTC)."""
    if isinstance(value, int | float):
        return value
    parsed = dt.datetime.fromisoformat(value)
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _in_order(query: dict, item: Range) -> None:
    """The documented order of a range's bounds (``lower <= upper``, ``<`` when the upper one is excluded)."""
    lower, upper = query.get(item.lower), query.get(item.upper)
    if lower is None or upper is None:
        return
    if _comparable(lower) > _comparable(upper):
        query[item.lower], query[item.upper] = upper, lower
    elif _comparable(lower) == _comparable(upper) and not item.upper_inclusive:
        del query[item.upper]


def _weekly_rules(query: dict) -> None:
    """The weekly average's: one of `bbox` and `region`; the box's edges and the days in order, at most 731 days."""
    if query.get("bbox") is None:
        query.pop("bbox", None)
        query.setdefault("region", "Prague")
    else:
        query.pop("region", None)
        lon_a, lat_a, lon_b, lat_b = (float(v) for v in query["bbox"].split(","))
        if lon_a == lon_b or lat_a == lat_b:
            query["bbox"] = "14.4,50.05,14.46,50.1"
        else:
            edges = (min(lon_a, lon_b), min(lat_a, lat_b), max(lon_a, lon_b), max(lat_a, lat_b))
            query["bbox"] = ",".join(map(repr, edges))
    start, end = sorted(dt.date.fromisoformat(query[name]) for name in ("from", "to"))
    query["from"], query["to"] = start.isoformat(), min(end, start + dt.timedelta(days=731)).isoformat()


def obey_documented_rules(path: str) -> HookDispatcher:
    """Hooks holding a positive example to the rules its operation documents in words (not expressible in OpenAPI).

    A `cursor` is valid only as a `next_cursor` the API issued for the same filters: its format is in the schema,
    which cursors were issued is not, so generated ones are left out (test_api_routes.py follows real ones).
    """
    hooks = HookDispatcher(scope=HookScope.TEST)

    def map_query(ctx, query):
        query = dict(query or {})
        query.pop("cursor", None)
        for item in RANGES.get(path, ()):
            _in_order(query, item)
        if path == f"/v1{WEEKLY_PATH}":
            _weekly_rules(query)
        return query

    hooks.register_hook_with_name(map_query, "map_query")
    return hooks


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize(("path", "mode"), CASES)
def test_generated_requests_get_documented_answers(api_schema, path, mode):
    operation = api_schema[path]["GET"]
    hooks = obey_documented_rules(path) if mode == GenerationMode.POSITIVE else None

    @given(case=operation.as_strategy(generation_mode=mode, hooks=hooks))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case):
        headers = {"X-API-Key": API_KEY}
        if mode == GenerationMode.NEGATIVE and "X-API-Key" not in (case.headers or {}):
            # The mutation is the missing key: adding it would turn the case into valid data (answered 200).
            headers = {}
        case.call_and_validate(headers=headers)

    check()
