"""The SSRF guard on its own: which URLs and addresses are refused."""

from __future__ import annotations

import ipaddress

import pytest

from invoiceflow.webhooks.guard import UrlRefused, check_url, is_forbidden_address, parse_url

FORBIDDEN = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "2002:7f00:1::",
]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_non_public_addresses_are_forbidden(address: str) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "https"),
        ("ftp://hooks.example.com/x", "https"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("https://token@hooks.example.com/x", "credentials"),
        ("https:///x", "host"),
        ("https://hooks.example.com/x#frag", "fragment"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https://127.0.0.1/x", "non-public"),
        ("https://[::1]/x", "non-public"),
        ("https://169.254.169.254/latest/meta-data", "non-public"),
        ("https://10.1.2.3:8443/x", "non-public"),
        ("https://hooks.example.com/" + "x" * 2000, "2000"),
    ],
)
def test_url_shapes_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused, match=reason):
        parse_url(url, allow_private=False)


def test_private_networks_allowed_admit_http_and_loopback() -> None:
    assert parse_url("http://127.0.0.1:8080/hooks", allow_private=True).port == 8080
    with pytest.raises(UrlRefused, match="credentials"):
        parse_url("http://a:b@127.0.0.1/", allow_private=True)


@pytest.mark.anyio
async def test_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(UrlRefused, match=r"localhost resolves to a non-public address"):
        await check_url("https://localhost:9999/hooks", allow_private=False)
    assert await check_url("https://localhost:9999/hooks", allow_private=True)


@pytest.mark.anyio
async def test_a_name_that_does_not_resolve_yet_is_accepted_at_save_time() -> None:
    url = "https://hooks.example.invalid/x"
    assert await check_url(url, allow_private=False) == url
