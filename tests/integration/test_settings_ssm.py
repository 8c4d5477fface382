from __future__ import annotations

import os
import uuid

import boto3
import pytest

from pickup.settings import SettingsError, load_settings
from tests.services import Services


@pytest.fixture
def ssm_path(services: Services, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in list(os.environ):
        if name.startswith("PICKUP_"):
            monkeypatch.delenv(name)
    path = f"/pickup/t{uuid.uuid4().hex[:8]}/"
    client = boto3.client(
        "ssm",
        endpoint_url=services.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.put_parameter(Name=path + "database_url", Value="postgresql://ssm@db/p", Type="String")
    client.put_parameter(Name=path + "redis_url", Value="redis://ssm:6379/0", Type="SecureString")
    client.put_parameter(Name=path + "cart-max-lines", Value="7", Type="String")
    client.put_parameter(Name=path + "nested/shop_name", Value="From SSM", Type="String")
    client.put_parameter(Name=path + "not_a_setting", Value="ignored", Type="String")
    monkeypatch.setenv("PICKUP_ENV", "test")
    monkeypatch.setenv("PICKUP_SSM_PATH", path)
    monkeypatch.setenv("PICKUP_AWS_ENDPOINT_URL", services.aws_endpoint)
    monkeypatch.setenv("PICKUP_AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("PICKUP_AWS_SECRET_ACCESS_KEY", "testing")
    return path


def test_settings_are_read_from_ssm_parameters_below_the_path(ssm_path: str) -> None:
    settings = load_settings()
    assert settings.database_url == "postgresql://ssm@db/p"
    assert settings.redis_url == "redis://ssm:6379/0"  # SecureString, decrypted
    assert settings.cart_max_lines == 7
    assert settings.shop_name == "From SSM"


def test_environment_variables_win_over_ssm(ssm_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PICKUP_CART_MAX_LINES", "9")
    assert load_settings().cart_max_lines == 9


def test_a_malformed_ssm_value_is_named_like_any_other_setting(
    ssm_path: str, services: Services
) -> None:
    boto3.client(
        "ssm",
        endpoint_url=services.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).put_parameter(Name=ssm_path + "http_port", Value="lots", Type="String")
    with pytest.raises(SettingsError, match="PICKUP_HTTP_PORT is invalid"):
        load_settings()


def test_an_unreachable_parameter_store_stops_start_up_with_one_line(
    ssm_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PICKUP_AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("PICKUP_SSM_PATH: cannot read SSM parameters")
    assert len(message.splitlines()) == 1
