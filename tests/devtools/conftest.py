"""Fixtures for the devtools tests: the moto S3 server and landing bucket of the include/ tests, not a copy of them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "include_test_fixtures", Path(__file__).resolve().parents[1] / "include" / "conftest.py"
)
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

moto_endpoint = _fixtures.moto_endpoint
landing_s3 = _fixtures.landing_s3
