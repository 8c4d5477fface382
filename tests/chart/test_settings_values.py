"""Every ``Settings`` field has a documented, schema-checked chart value (or a stated reason).

A setting added to services/pickup/settings.py without a chart value fails here. The rendered
default ConfigMap and Secret are also loaded into ``Settings`` itself: the chart's defaults
must be accepted and equal the application's own.
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

import annotated_types
import pytest
import yaml

from pickup.settings import Settings
from tests.chart.conftest import (
    CHART,
    RELEASE,
    Chart,
    RenderError,
    by_name,
    containers,
    of_kind,
    pod_specs,
)

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
PARAMS = set(re.findall(r"^\s*## @param (\S+)", (CHART / "values.yaml").read_text(), re.M))

# Fields with no chart value of their own, and why.
EXCLUDED = {
    "http_host": "set by the chart to 0.0.0.0 (pods listen on every address)",
    "http_port": "set per pod from components.api.port (portEnv PICKUP_HTTP_PORT)",
    "health_port": "set per pod from the component's port (portEnv PICKUP_HEALTH_PORT)",
    "operator_liveness_port": "the chart passes --liveness with components.operator.port",
}

# Fields rendered only when their value is set (empty means the application's default,
# None), with the values that set them; all are checked in one render.
OPTIONAL = {
    "database_url": "secrets.databaseUrl=postgresql://pickup@db:5432/pickup",
    "redis_url": "secrets.redisUrl=redis://cache:6379/0",
    "aws_endpoint_url": "config.awsEndpointUrl=http://moto.example:5000",
    "ssm_path": "config.ssmPath=/pickup/test/",
    "cookie_secure": "config.cookieSecure=true",
    "operator_namespace": "config.operatorNamespace=shop",
    "admin_password": "secrets.adminPassword=a-long-admin-password",
    "aws_access_key_id": "secrets.awsAccessKeyId=testing",
    "aws_secret_access_key": "secrets.awsSecretAccessKey=testing",
}
OPTIONAL_SETS = [*OPTIONAL.values(), "config.env=development"]

# Credentials (Secret): their values live under secrets.*, not config.*.
SECRET_FIELDS = {
    "database_url": "databaseUrl",
    "redis_url": "redisUrl",
    "secret_key": "secretKey",
    "admin_password": "adminPassword",
    "aws_access_key_id": "awsAccessKeyId",
    "aws_secret_access_key": "awsSecretAccessKey",
}
# The chart derives these when empty, from the ingress or the dev services.
DERIVED_WHEN_EMPTY = {"public_url"}


def _camel(field: str) -> str:
    first, *rest = field.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _env_names(documents: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for doc in documents:
        if doc["kind"] in {"ConfigMap", "Secret"}:
            names |= set(doc.get("data") or {}) | set(doc.get("stringData") or {})
    for _, pod in pod_specs(documents):
        for container in containers(pod):
            names |= {item["name"] for item in container.get("env", [])}
    return names


def test_every_setting_is_rendered_by_default_or_listed_with_a_reason(chart: Chart) -> None:
    fields = set(Settings.model_fields)
    rendered = _env_names(chart.scenario("default"))
    with_optional = _env_names(chart.template(sets=OPTIONAL_SETS))
    missing = sorted(
        f"PICKUP_{name.upper()}"
        for name in fields - set(EXCLUDED)
        if f"PICKUP_{name.upper()}" not in (rendered if name not in OPTIONAL else with_optional)
    )
    assert not missing, f"settings without a chart value (add config.*/secrets.*): {missing}"
    stale = sorted((set(EXCLUDED) | set(OPTIONAL)) - fields)
    assert not stale, f"listed but no longer settings: {stale}"
    assert all(reason for reason in EXCLUDED.values())


def test_every_setting_value_is_documented_and_in_the_schema() -> None:
    config = SCHEMA["properties"]["config"]
    secrets = SCHEMA["properties"]["secrets"]
    for field in set(Settings.model_fields) - set(EXCLUDED):
        if field in SECRET_FIELDS:
            section, key, schema = "secrets", SECRET_FIELDS[field], secrets
        else:
            section, key, schema = "config", _camel(field), config
        assert key in VALUES[section], f"{section}.{key} ({field}) is not in values.yaml"
        assert f"{section}.{key}" in PARAMS, f"{section}.{key} has no ## @param"
        assert key in schema["properties"] and key in schema["required"], f"{section}.{key}"


def _bounds(field: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for item in Settings.model_fields[field].metadata:
        if isinstance(item, annotated_types.Ge):
            found["minimum"] = float(item.ge)
        elif isinstance(item, annotated_types.Gt):
            found["exclusiveMinimum"] = float(item.gt)
        elif isinstance(item, annotated_types.Le):
            found["maximum"] = float(item.le)
        elif isinstance(item, annotated_types.MinLen):
            found["minLength"] = float(item.min_length)
        elif isinstance(item, annotated_types.MaxLen):
            found["maxLength"] = float(item.max_length)
    return found


def test_config_types_and_bounds_match_the_settings_constraints() -> None:
    properties = SCHEMA["properties"]["config"]["properties"]
    for field, info in Settings.model_fields.items():
        key = _camel(field)
        if field in EXCLUDED or field in SECRET_FIELDS or key not in properties:
            continue
        schema = properties[key]
        bounds = _bounds(field)
        for name in ("minimum", "exclusiveMinimum", "maximum", "maxLength"):
            expected, actual = bounds.get(name), schema.get(name)
            assert (expected is None) == (actual is None), f"config.{key} {name}"
            if expected is not None:
                assert float(actual) == expected, f"config.{key} {name}"
        if info.annotation is int:
            assert schema["type"] == "integer", key
        elif info.annotation is float:
            assert schema["type"] == "number", key
        elif info.annotation is bool:
            assert schema["type"] == "boolean", key
        elif info.annotation == list[str]:
            assert schema["type"] == "array" and schema["items"]["type"] == "string", key


def test_config_defaults_equal_the_settings_defaults() -> None:
    for field, info in Settings.model_fields.items():
        key = _camel(field)
        if field in EXCLUDED or field in SECRET_FIELDS:
            continue
        value = VALUES["config"][key]
        default = info.get_default(call_default_factory=True)
        if value == "":
            assert default is None or field in DERIVED_WHEN_EMPTY, f"config.{key}"
        else:
            assert value == default, f"config.{key}: chart {value!r}, settings {default!r}"


def test_the_default_render_loads_into_settings_equal_to_its_defaults(
    chart: Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = chart.scenario("default")
    environment = dict(by_name(documents, "ConfigMap", RELEASE)["data"])
    secret = by_name(documents, "Secret", RELEASE)["data"]
    environment |= {key: base64.b64decode(value).decode() for key, value in secret.items()}
    environment.setdefault("PICKUP_DATABASE_URL", "postgresql://pickup@db:5432/pickup")
    environment.setdefault("PICKUP_REDIS_URL", "redis://cache:6379/0")
    for name in [name for name in os.environ if name.startswith("PICKUP_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    loaded = Settings()
    for field, info in Settings.model_fields.items():
        if field in EXCLUDED or field in SECRET_FIELDS or field in DERIVED_WHEN_EMPTY:
            continue
        default = info.get_default(call_default_factory=True)
        assert getattr(loaded, field) == default, field


def test_the_optional_settings_render_with_the_values_given(chart: Chart) -> None:
    documents = chart.template(
        sets=OPTIONAL_SETS, set_strings=["config.staffAlertPhones[0]=+447700900123"]
    )
    config = by_name(documents, "ConfigMap", RELEASE)["data"]
    assert config["PICKUP_COOKIE_SECURE"] == "true"
    assert config["PICKUP_OPERATOR_NAMESPACE"] == "shop"
    assert json.loads(config["PICKUP_STAFF_ALERT_PHONES"]) == ["+447700900123"]
    assert (
        "PICKUP_COOKIE_SECURE"
        not in by_name(chart.scenario("default"), "ConfigMap", RELEASE)["data"]
    )


@pytest.mark.parametrize(
    "setting",
    [
        "config.slotMinutes=4",
        "config.maxBodyBytes=1023",
        "config.smsSenderId=far-too-long-id",
        "config.staffAlertEmails[0]=not-an-address",
        "config.cookieSecure=maybe",
        "config.noSuchSetting=1",
    ],
)
def test_the_schema_refuses_out_of_range_settings(chart: Chart, setting: str) -> None:
    with pytest.raises(RenderError):
        chart.template(sets=[setting])


def test_large_integers_render_as_plain_digits(chart: Chart, tmp_path: Any) -> None:
    # Values files hold numbers as float64; without `int64` helm would print 1.048576e+07.
    path = tmp_path / "values.yaml"
    path.write_text("config:\n  maxBodyBytes: 10485760\n")
    config = by_name(chart.template([path]), "ConfigMap", RELEASE)["data"]
    assert config["PICKUP_MAX_BODY_BYTES"] == "10485760"


def test_the_operator_role_follows_the_watched_namespace(chart: Chart) -> None:
    documents = chart.template(sets=["config.operatorNamespace=shop"])
    assert by_name(documents, "Role", f"{RELEASE}-operator")["metadata"]["namespace"] == "shop"
    binding = by_name(documents, "RoleBinding", f"{RELEASE}-operator")
    assert binding["metadata"]["namespace"] == "shop"
    assert binding["subjects"][0]["namespace"] == "pickup"
    assert not of_kind(chart.scenario("default"), "KopfPeering")
