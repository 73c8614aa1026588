"""Schemathesis over the OpenAPI document: generated requests to every route, no server error, answers as documented.

Each operation gets bounded positive (schema-valid) and negative (schema-invalid) examples, without shrinking, to
keep the suite quick on a shared machine. Schemathesis' pytest plugin does not run under pytest 9 yet, so its
strategies are driven by Hypothesis directly.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from api_data import API_KEY, products_dataset
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from include.api.app import create_app
from include.api.config import Settings
from include.api.datasets import REGISTRY, Range

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
# Valid by the schema, refused by design: a cursor the API did not issue, range bounds out of order (the dataset
# filters, and the weekly average's box (four numbers in order, in one text) and days).
SEMANTIC = [{"cursor"}, {"bbox"}, {"from", "to"}] + [
    {f.lower, f.upper} for d in DATASETS for f in d.filters if isinstance(f, Range)
]


def semantically_checked(case) -> bool:
    return any(names <= set(case.query or {}) for names in SEMANTIC)


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize(("path", "mode"), CASES)
def test_generated_requests_get_documented_answers(api_schema, path, mode):
    operation = api_schema[path]["GET"]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case):
        excluded = [positive_data_acceptance] if semantically_checked(case) else []
        headers = {"X-API-Key": API_KEY}
        if mode == GenerationMode.NEGATIVE and "X-API-Key" not in (case.headers or {}):
            # The mutation is the missing key: adding it would turn the case into valid data (answered 200).
            headers = {}
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    check()
