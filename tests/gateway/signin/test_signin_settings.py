"""The sign-in settings: proxies as CIDRs (IPv6 too), rate limits as a JSON object, mistakes named."""

from __future__ import annotations

import pytest

from switchboard.gateway.config import ConfigError, load_settings

BASE = {
    "SWITCHBOARD_GATEWAY_DATABASE_URL": "postgresql://gateway@db/gateway",
    "SWITCHBOARD_GATEWAY_UPSTREAM_API_KEY": "sk-ant-not-used",
    "SWITCHBOARD_GATEWAY_SIGNING_KEYS": "/keys/a.pem:/keys/b.pem",
    "SWITCHBOARD_GATEWAY_PUBLIC_BASE_URL": "https://cloud.example/",
}


def test_trusted_proxies_are_comma_separated_networks_ipv6_included() -> None:
    settings = load_settings({**BASE, "SWITCHBOARD_GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8, ::1 ,192.0.2.7"})
    assert settings.trusted_proxies == ["10.0.0.0/8", "::1/128", "192.0.2.7/32"]
    assert load_settings(BASE).trusted_proxies == []  # nobody is trusted by default, not even 127.0.0.1


def test_a_mistyped_proxy_stops_the_process_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_settings({**BASE, "SWITCHBOARD_GATEWAY_TRUSTED_PROXIES": "10.0.0.0/33"})


def test_rate_limits_come_from_a_json_object_and_keep_their_defaults_otherwise() -> None:
    settings = load_settings(
        {**BASE, "SWITCHBOARD_GATEWAY_RATE_LIMITS": '{"token_requests_per_address": 600}'}
    )
    assert settings.rate_limits.token_requests_per_address == 600
    assert settings.rate_limits.password_failures_per_account == 10
    for bad, reason in (
        ("600", "rate_limits"),
        ("{", "JSON object"),
        ('{"tokens": 1}', "rate_limits.tokens"),
    ):
        with pytest.raises(ConfigError, match=reason):
            load_settings({**BASE, "SWITCHBOARD_GATEWAY_RATE_LIMITS": bad})


def test_a_code_lives_between_one_and_thirty_minutes() -> None:
    assert load_settings(BASE).device_code_seconds == 600
    with pytest.raises(ConfigError, match="device_code_seconds"):
        load_settings({**BASE, "SWITCHBOARD_GATEWAY_DEVICE_CODE_SECONDS": "7200"})


def test_an_access_token_cannot_be_set_to_live_past_fifteen_minutes() -> None:
    """A stolen access token dies within its lifetime (revocation is checked per request, but the contract
    caps the lifetime too): a mistyped setting stops the process instead of issuing day-long tokens."""
    longest = load_settings({**BASE, "SWITCHBOARD_GATEWAY_ACCESS_TOKEN_SECONDS": "900"})
    assert longest.access_token_seconds == 900
    with pytest.raises(ConfigError, match="access_token_seconds"):
        load_settings({**BASE, "SWITCHBOARD_GATEWAY_ACCESS_TOKEN_SECONDS": "901"})
