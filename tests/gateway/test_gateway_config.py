"""The gateway's settings: what each driver cannot read is refused at start-up, naming the setting, never
echoing its value."""

from __future__ import annotations

import pytest

from switchboard.gateway.config import ConfigError, load_settings

BASE = {
    "SWITCHBOARD_GATEWAY_DATABASE_URL": "postgresql://gateway@db/gateway",
    "SWITCHBOARD_GATEWAY_UPSTREAM_API_KEY": "sk-ant-not-used",
    "SWITCHBOARD_GATEWAY_SIGNING_KEYS": "/keys/a.pem:/keys/b.pem",
    "SWITCHBOARD_GATEWAY_PUBLIC_BASE_URL": "https://cloud.example/",
}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://u:hunter2@127.0.0.1:notaport/db", "port"),
        ("postgresql://u:hunter2@127.0.0.1:99999/db", "port"),
        ("postgresql://u:hunter2@db1:5432,db2:x/db", "port"),
        ("postgresql://u:hunter2@/db?host=db&port=x", "port"),
        ("postgresql://u:hunter2@[::1:5432/db", "malformed"),
        ("postgresql://u:hunter2%zz@db/gw", "malformed"),
        ("mysql://u:hunter2@db/gw", "postgresql://"),
    ],
)
def test_a_database_url_either_driver_cannot_read_is_refused_without_echoing_it(
    url: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({**BASE, "SWITCHBOARD_GATEWAY_DATABASE_URL": url})
    assert "database_url" in str(refused.value) and reason in str(refused.value)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw@db.internal:5432/switchboard",
        "postgres://u@db/switchboard?sslmode=require",
        "postgresql://u:p@db1:5432,db2/switchboard?target_session_attrs=read-write",
        "postgresql://u:p@[::1]:5432,[2001:db8::7]/switchboard",
        "postgresql://u:p%40ss@db/switchboard",
    ],
)
def test_database_urls_both_drivers_read_are_accepted(url: str) -> None:
    assert (
        load_settings({**BASE, "SWITCHBOARD_GATEWAY_DATABASE_URL": url}).database_url.get_secret_value()
        == url
    )


def test_a_pool_minimum_above_its_maximum_is_refused_not_raised_to_it() -> None:
    with pytest.raises(ConfigError, match=r"pool_min_size \(30\) is larger than pool_max_size \(20\)"):
        load_settings(
            {**BASE, "SWITCHBOARD_GATEWAY_POOL_MIN_SIZE": "30", "SWITCHBOARD_GATEWAY_POOL_MAX_SIZE": "20"}
        )
    settings = load_settings(
        {**BASE, "SWITCHBOARD_GATEWAY_POOL_MIN_SIZE": "5", "SWITCHBOARD_GATEWAY_POOL_MAX_SIZE": "5"}
    )
    assert (settings.pool_min_size, settings.pool_max_size) == (5, 5)
