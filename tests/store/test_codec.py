"""The JSON guard every JSON column goes through: secrets refused, plain JSON only, canonical text; UTC times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from migrator.store import SecretInStore, UnstorableValue, canonical, secret_key
from migrator.store.codec import _secret_looking, utc
from migrator.store.store import registry_key_fold


@pytest.mark.parametrize(
    "payload",
    [
        {"password": "hunter2"},
        {"adminPassword": "x"},
        {"Client_Secret": "x"},
        {"refresh_token": "x"},
        {"PSCredential": {"user": "CONTOSO\\admin"}},
        {"credentials": ["a", "b"]},
        {"outer": [{"inner": {"TOKEN": 12345}}]},
    ],
)
def test_secret_looking_keys_are_refused(payload: dict[str, object]) -> None:
    """password / secret / token / credential in a key (any case, any depth) is refused."""
    with pytest.raises(SecretInStore, match="secret") as caught:
        canonical(payload, where="intent of PC-001")
    assert "hunter2" not in str(caught.value) and "12345" not in str(caught.value)
    assert "PC-001" in str(caught.value)


def test_the_error_names_the_key_path() -> None:
    """The message says where the secret-looking key is, so the caller can find it."""
    with pytest.raises(SecretInStore, match=r"'outer\[0\]\.inner\.TOKEN'"):
        canonical({"outer": [{"inner": {"TOKEN": 12345}}]})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("plaintext_password_present", False),  # klist cloud debug
        ("password_derived_keys_present", None),
        ("as_rep_credential_type", 2),
        ("public_key_credential_present", True),
        ("AdfsRefreshToken", True),  # dsregcmd Ngc prerequisite
        ("AccessTokenUrl", "https://login.microsoftonline.com/x/oauth2/token"),
        ("secret_name", "vault-entry"),
        ("state", "password reset required"),  # a secret word in a value, not a key
    ],
)
def test_facts_that_describe_secrets_are_allowed(key: str, value: object) -> None:
    """Flags and descriptions of secrets (what the parsers produce) are not secrets."""
    assert not secret_key(key, value)
    assert canonical({key: value})


def test_private_keys_are_refused_under_any_key() -> None:
    """A PEM private key is a secret whatever its key is called."""
    with pytest.raises(SecretInStore, match="private key"):
        canonical({"blob": "-----BEGIN RSA PRIVATE KEY-----\nMII..."})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"when": datetime(2025, 1, 1, tzinfo=UTC)}, "datetime"),
        ({"n": float("nan")}, "nan"),
        ({1: "x"}, "not a string"),
        ({"b": b"raw"}, "bytes"),
    ],
)
def test_non_json_values_are_refused(value: object, message: str) -> None:
    """Only plain JSON goes in, so what reads back is what was written."""
    with pytest.raises(UnstorableValue, match=message):
        canonical(value)


def test_canonical_text_is_stable() -> None:
    """Key order and tuples do not change the text; non-ASCII stays readable."""
    assert canonical({"b": (1, 2), "a": "é"}) == canonical({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}'


def test_times_are_kept_in_utc() -> None:
    """Aware times convert to UTC; naive ones are refused."""
    paris = timezone(timedelta(hours=1))
    assert utc(datetime(2025, 1, 1, 9, tzinfo=paris)) == datetime(2025, 1, 1, 8, tzinfo=UTC)
    with pytest.raises(UnstorableValue, match="naive"):
        utc(datetime(2025, 1, 1))


@pytest.mark.parametrize(
    "spelling",
    [
        r"HKLM\SOFTWARE\Policies\Microsoft\PassportForWork",
        r"hklm:\software\policies\microsoft\passportforwork\\",
        r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\PassportForWork",
        r"Registry::HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\PassportForWork",
        r"Microsoft.PowerShell.Core\Registry::HKLM\SOFTWARE\Policies\Microsoft\PassportForWork",
        "HKLM/SOFTWARE/Policies/Microsoft/PassportForWork",
    ],
)
def test_registry_key_spellings_fold_to_one(spelling: str) -> None:
    """Every way scripts spell the policy key compares equal (the registry is case-insensitive)."""
    assert registry_key_fold(spelling) == r"hklm\software\policies\microsoft\passportforwork"


def test_a_key_is_judged_once_and_its_value_still_counts() -> None:
    """The verdict on a key's words is cached; whether its value can carry a secret is decided every time."""
    _secret_looking.cache_clear()
    for _ in range(3):
        assert secret_key("vault_password", "x")
        assert not secret_key("vault_password", True)  # a flag cannot carry a secret
        assert not secret_key("vault_password", None)
    info = _secret_looking.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    with pytest.raises(SecretInStore):  # a cached verdict refuses as the first did
        canonical({"vault_password": "x"})


def test_paths_built_only_on_error_name_list_items_and_nested_keys() -> None:
    """Key paths are built when there is something to report, and read as before: ``a[1].b``."""
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----"
    with pytest.raises(SecretInStore, match=r"at certs\[1\]\.pem"):
        canonical({"certs": [{"pem": "public"}, {"pem": pem}]})
    with pytest.raises(UnstorableValue, match=r"facts\.when is a datetime"):
        canonical({"facts": {"when": datetime(2026, 1, 1, tzinfo=UTC)}})
    with pytest.raises(UnstorableValue, match=r"\[2\] is nan"):
        canonical([1.0, 2.0, float("nan")])
