"""The gateway's settings: what each driver cannot read is refused at start-up, naming the setting, never
echoing its value."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from switchboard.gateway.config import ConfigError, load_database_settings, load_settings

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
        # libpq reads them; asyncpg would send them to PostgreSQL as settings, which refuses them.
        ("postgresql://u:hunter2@db/gw?connect_timeout=3", "'connect_timeout', which only libpq reads"),
        ("postgresql://u:hunter2@db/gw?sslmode=require&keepalives=1", "'keepalives', which only libpq reads"),
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
    "password", ["s3c/retPW", "s3c#retPW", "s3c?retPW", "s3c@retPW", "/s3cretPW", "123/retPW"]
)
def test_a_password_with_a_reserved_character_spelled_raw_is_refused_with_the_fix_and_no_part_of_it(
    password: str,
) -> None:
    """Read raw, `/ # ? @` in a password end the host part early or make a host of its tail: the drivers
    would report a bad port or an unknown host `retPW@127.0.0.1`, quoting the password."""
    url = f"postgresql://gateway:{password}@127.0.0.1:5432/gateway"
    with pytest.raises(ConfigError) as refused:
        load_settings({**BASE, "SWITCHBOARD_GATEWAY_DATABASE_URL": url})
    said = str(refused.value)
    assert "database_url" in said and "percent-encode the password (e.g. / as %2F, @ as %40" in said, said
    assert "retPW" not in said and "s3c" not in said and "port" not in said.split("(e.g.")[0], said


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://gateway:s3c%2FretPW@127.0.0.1:5432/gateway",
        "postgresql://gateway:s3c%40retPW@127.0.0.1:5432/gateway",
        "postgresql://gateway:pa:ss@db/gateway",
        "postgresql://db:5432/gateway?options=-c%20search_path%3Dx@y",
    ],
)
def test_urls_with_an_encoded_password_or_a_later_at_sign_are_accepted(url: str) -> None:
    assert (
        load_settings({**BASE, "SWITCHBOARD_GATEWAY_DATABASE_URL": url}).database_url.get_secret_value()
        == url
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw@db.internal:5432/switchboard",
        "postgres://u@db/switchboard?sslmode=require",
        "postgresql://u:p@db1:5432,db2/switchboard?target_session_attrs=read-write",
        "postgresql://u:p@[::1]:5432,[2001:db8::7]/switchboard",
        "postgresql://u:p%40ss@db/switchboard",
        "postgresql://u:p@db/switchboard?application_name=gateway&sslmode=prefer",
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


def test_a_mistyped_key_in_the_file_is_named_as_the_file_has_it_with_a_suggestion(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('databse_url = "postgresql://u:hunter2@db/gw"\n')
    with pytest.raises(ConfigError) as refused:
        load_settings({**BASE, "SWITCHBOARD_GATEWAY_CONFIG": str(config)})
    said = str(refused.value)
    assert f"databse_url (in {config}): not a setting (did you mean database_url?)" in said
    assert "SWITCHBOARD_GATEWAY_DATABSE_URL" not in said and "hunter2" not in said


def test_a_bad_value_is_named_by_where_it_was_set(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('pool_max_size = "many"\n[rate_limits]\ntokens = 1\n')
    with pytest.raises(ConfigError) as refused:
        load_settings({**BASE, "SWITCHBOARD_GATEWAY_CONFIG": str(config)})
    lines = str(refused.value).splitlines()
    assert any(line.strip().startswith("pool_max_size: ") for line in lines), lines
    assert any(line.strip().startswith("rate_limits.tokens: ") for line in lines), lines
    assert "SWITCHBOARD_GATEWAY_POOL_MAX_SIZE" not in str(refused.value)
    # The environment wins over the file, and its variable is named.
    with pytest.raises(ConfigError, match=r"pool_max_size \(SWITCHBOARD_GATEWAY_POOL_MAX_SIZE\): "):
        load_settings(
            {**BASE, "SWITCHBOARD_GATEWAY_CONFIG": str(config), "SWITCHBOARD_GATEWAY_POOL_MAX_SIZE": "x"}
        )


def test_an_unknown_gateway_variable_is_warned_about_not_silently_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="switchboard.gateway.config"):
        settings = load_settings(
            {
                **BASE,
                "SWITCHBOARD_GATEWAY_TRUSTD_PROXIES": "10.0.0.0/8",
                "SWITCHBOARD_GATEWAY_URL": "https://cloud.example",  # the language server's, not a typo
                "SWITCHBOARD_GATEWAY_CONFIG": "",
            }
        )
    assert settings.trusted_proxies == []
    assert [record.getMessage() for record in caplog.records] == [
        "SWITCHBOARD_GATEWAY_TRUSTD_PROXIES is not a gateway setting: ignored"
        " (did you mean SWITCHBOARD_GATEWAY_TRUSTED_PROXIES?)"
    ]


def test_the_database_commands_need_only_the_database_url(tmp_path: Path) -> None:
    only = {"SWITCHBOARD_GATEWAY_DATABASE_URL": "postgresql://gateway@db/gateway"}
    assert load_database_settings(only).database_url.get_secret_value().endswith("/gateway")
    with pytest.raises(ConfigError) as refused:
        load_settings(only)
    assert all(name in str(refused.value) for name in ("upstream_api_key", "signing_keys", "public_base_url"))
    # A file written for the replicas serves them too; a key that is no setting is still refused.
    config = tmp_path / "gateway.toml"
    config.write_text('upstream_api_key = "sk-ant-x"\npublic_base_url = "https://cloud.example"\n')
    assert load_database_settings({**only, "SWITCHBOARD_GATEWAY_CONFIG": str(config)}).pool_max_size == 20
    config.write_text('upstream_api_kye = "sk-ant-x"\n')
    with pytest.raises(ConfigError, match="upstream_api_kye"):
        load_database_settings({**only, "SWITCHBOARD_GATEWAY_CONFIG": str(config)})
    with pytest.raises(ConfigError, match="database_url"):
        load_database_settings({})
