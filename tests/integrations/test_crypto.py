"""Integration credentials at rest: encrypted with a key from the settings, unreadable without it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from invoiceflow.integrations.crypto import SecretsUnreadable, decrypt_secrets, encrypt_secrets
from tests.conftest import make_settings

SECRETS = {"source": {"headers": {"Authorization": "Bearer very-secret-token"}}, "destination": {"api_key": "k-123"}}


def test_secrets_round_trip_and_the_token_reveals_nothing(tmp_path: Path) -> None:
    settings = make_settings("sqlite:///unused.db", tmp_path)
    token = encrypt_secrets(settings, SECRETS)
    assert token is not None
    assert "very-secret-token" not in token
    assert "k-123" not in token
    assert decrypt_secrets(settings, token) == SECRETS
    assert encrypt_secrets(settings, SECRETS) != token  # a fresh IV every time


def test_nothing_to_store_is_stored_as_nothing(tmp_path: Path) -> None:
    settings = make_settings("sqlite:///unused.db", tmp_path)
    assert encrypt_secrets(settings, {"source": {}, "destination": {}}) is None
    assert decrypt_secrets(settings, None) == {}


def test_the_key_is_derived_from_the_secret_key_unless_one_is_configured(tmp_path: Path) -> None:
    derived = make_settings("sqlite:///unused.db", tmp_path)
    token = encrypt_secrets(derived, SECRETS)
    other_secret = make_settings("sqlite:///unused.db", tmp_path, secret_key="another-secret-key-" + "y" * 32)
    with pytest.raises(SecretsUnreadable):
        decrypt_secrets(other_secret, token)

    fernet_key = Fernet.generate_key().decode()
    configured = make_settings("sqlite:///unused.db", tmp_path, encryption_key=fernet_key)
    sealed = encrypt_secrets(configured, SECRETS)
    assert Fernet(fernet_key.encode()).decrypt(sealed.encode())  # type: ignore[union-attr]  # a plain Fernet token
    with pytest.raises(SecretsUnreadable):
        decrypt_secrets(derived, sealed)


def test_keys_rotate_new_key_first(tmp_path: Path) -> None:
    old = make_settings("sqlite:///unused.db", tmp_path, encryption_key="an old passphrase")
    token = encrypt_secrets(old, SECRETS)
    rotated = make_settings("sqlite:///unused.db", tmp_path, encryption_key="a new passphrase, an old passphrase")
    assert decrypt_secrets(rotated, token) == SECRETS
    fresh = encrypt_secrets(rotated, SECRETS)
    with pytest.raises(SecretsUnreadable):
        decrypt_secrets(old, fresh)
