"""Requests checked against Metabase's own OpenAPI description of the operations the provisioning calls.

``metabase_api_v0.59.json`` (beside this file) is vendored from Metabase's ``docs/api.json``; its ``info`` says from
where and what was left out. The fake Metabase runs ``RequestValidator.problems`` on every request it routes, so a
request the real server's schema refuses fails the tests, as it would fail against Metabase.

Three relaxations and two tightenings of the published description, each for a reason:

- Metabase writes malli's ``:or`` (the first alternative that matches wins) as ``oneOf``, which in JSON Schema
  refuses a value two alternatives accept (a template-tag id is a UUID string *and* a non-blank string): read as
  ``anyOf``.
- Metabase's schemas mark keys (and query parameters) required that have a default, because its malli schemas fill
  the default in before validating: those are optional here.
- Request bodies are open objects in Metabase (unknown keys are ignored), except where the provisioning relies on a
  key being kept: a card parameter keeps only the keys its schema declares (later 0.59 patch releases strip the
  others, e.g. ``required``, so a card sending one would differ from its read-back on every run), and setup's
  ``prefs`` only its declared settings (others, such as ``allow_tracking``, are ignored: dead configuration).
- Undeclared query parameters are refused (Metabase ignores them: a parameter that does nothing, such as
  ``ignore_view`` on ``GET /api/card/:id`` since v57).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

SPEC_PATH = Path(__file__).with_name("metabase_api_v0.59.json")
COMPONENTS = "#/components/schemas/"


def _relax_defaults(node: Any) -> None:
    """Drop from every ``required`` list the keys whose schema has a default (Metabase fills those in); ``oneOf``
    becomes ``anyOf`` (see the module docstring)."""
    if isinstance(node, dict):
        if "oneOf" in node:
            node["anyOf"] = node.pop("oneOf")
        properties = node.get("properties")
        if isinstance(node.get("required"), list) and isinstance(properties, dict):
            node["required"] = [key for key in node["required"] if "default" not in properties.get(key, {})]
        for value in node.values():
            _relax_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _relax_defaults(value)


def load_spec(path: Path = SPEC_PATH) -> dict:
    """The vendored description, relaxed as the module docstring says."""
    spec = json.loads(path.read_text(encoding="utf-8"))
    _relax_defaults(spec)
    for operations in spec["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if "default" in parameter.get("schema", {}):
                    parameter["required"] = False
    return spec


def _group(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _template(path: str) -> re.Pattern[str]:
    parts = [
        f"(?P<{_group(p[1:-1])}>[^/]+)" if p.startswith("{") else re.escape(p) for p in path.rstrip("/").split("/")
    ]
    return re.compile("/".join(parts))


def _coerce(text: str) -> Any:
    """A query or path value as JSON would have it: ``true`` a boolean, ``12`` a number, else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _is_array(schema: Mapping) -> bool:
    return schema.get("type") == "array" or any(_is_array(s) for s in schema.get("anyOf", []))


class RequestValidator:
    """Checks requests against the vendored description.

    Args:
        spec: the description (default: ``load_spec()``).
    """

    def __init__(self, spec: dict | None = None) -> None:
        self.spec = spec or load_spec()
        self._operations = [
            (method.upper(), _template(path), path, operation)
            for path, operations in self.spec["paths"].items()
            for method, operation in operations.items()
        ]

    def schema(self, name: str) -> dict:
        """A component schema by name (as published, after the relaxation)."""
        return self.spec["components"]["schemas"][name]

    def _errors(self, schema: Mapping, value: Any, where: str) -> list[str]:
        # The components travel with each schema so that its #/components/schemas/... references resolve.
        validator = Draft202012Validator({**schema, "components": self.spec["components"]})
        error = best_match(validator.iter_errors(value))
        if error is None:
            return []
        at = ".".join(str(part) for part in error.absolute_path)
        return [f"{where}{'.' + at if at else ''}: {error.message}"]

    def find(self, method: str, path: str) -> tuple[str, dict, dict[str, str]] | None:
        """The ``(template, operation, path values)`` a request goes to, if the description has it."""
        for op_method, pattern, template, operation in self._operations:
            match = pattern.fullmatch(path.rstrip("/"))
            if op_method == method and match:
                return template, operation, match.groupdict()
        return None

    def problems(self, method: str, path: str, query: Mapping[str, list[str]], body: Any) -> list[str]:
        """Why Metabase would refuse the request (empty when it conforms).

        Args:
            method: the HTTP method.
            path: the URL path, without the query string.
            query: the query string as ``urllib.parse.parse_qs`` reads it.
            body: the decoded JSON body, or None.
        """
        found = self.find(method, path)
        if found is None:
            return [f"{method} {path}: no such operation in Metabase's API description"]
        template, operation, values = found
        where = f"{method} {template}"
        problems = self._parameter_problems(where, operation, values, query)
        request = operation.get("requestBody")
        if request is None:
            if body not in (None, {}):
                problems.append(f"{where}: takes no request body")
            return problems
        schema = request["content"]["application/json"]["schema"]
        problems += self._errors(schema, body, f"{where} body")
        return problems + self._closed_parts(where, body)

    def _parameter_problems(self, where: str, operation: dict, values: dict, query: Mapping) -> list[str]:
        problems = []
        declared = {p["name"]: p for p in operation.get("parameters", [])}
        for name in query:
            if declared.get(name, {}).get("in") != "query":
                problems.append(f"{where}: undeclared query parameter {name!r} (Metabase ignores it)")
        for name, parameter in declared.items():
            schema = parameter.get("schema", {})
            if parameter["in"] == "path":
                value = _coerce(values.get(_group(name), ""))
            elif name in query:
                texts = query[name]
                value = [_coerce(t) for t in texts] if _is_array(schema) else _coerce(texts[-1])
            else:
                if parameter.get("required"):
                    problems.append(f"{where}: query parameter {name!r} is required")
                continue
            problems += self._errors(schema, value, f"{where} {parameter['in']} parameter {name!r}")
        return problems

    def _closed_parts(self, where: str, body: Any) -> list[str]:
        if not isinstance(body, dict):
            return []
        problems = []
        if isinstance(body.get("prefs"), dict) and where.endswith("/api/setup/"):
            declared = self.find("POST", "/api/setup")[1]["requestBody"]["content"]["application/json"]["schema"]
            known = set(declared["properties"]["prefs"]["properties"])
            problems += [f"{where} body.prefs: {key!r} is not a setup setting (ignored)" for key in body["prefs"]
                         if key not in known]  # fmt: skip
        parameter_keys = set(self.schema("metabase.parameters.schema.parameter")["properties"])
        for index, parameter in enumerate(body.get("parameters") or []):
            extra = sorted(set(parameter) - parameter_keys) if isinstance(parameter, dict) else []
            if extra:
                problems.append(f"{where} body.parameters.{index}: undeclared keys {extra} (stripped by Metabase)")
        native = (
            (body.get("dataset_query") or {}).get("native") if isinstance(body.get("dataset_query"), dict) else None
        )
        if isinstance(native, dict) and "template-tags" in native:
            tags = copy.deepcopy(native["template-tags"])
            tag_map = {"$ref": COMPONENTS + "metabase.lib.schema.template-tag.template-tag-map"}
            problems += self._errors(tag_map, tags, f"{where} body.dataset_query.native.template-tags")
        return problems
