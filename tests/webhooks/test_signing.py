"""verify_signature, the receivers' check: exact bytes, the right secret, a fresh timestamp."""

from __future__ import annotations

import hashlib
import hmac

from invoiceflow.webhooks.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    compute_signature,
    signature_header,
    signed_headers,
    verify_signature,
)

SECRET = "whsec_test-secret-0123456789"
BODY = b'{"id":"e1","type":"InvoiceCreated","data":{"total_amount":"121.00"}}'
NOW = 1_800_000_000


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(SECRET, NOW, BODY) == expected
    assert signature_header(SECRET, NOW, BODY) == f"v1={expected}"
    headers = signed_headers(secret=SECRET, event_id="e1", event_type="InvoiceCreated", timestamp=NOW, body=BODY)
    assert headers == {
        "Content-Type": "application/json",
        "X-Invoiceflow-Event-Id": "e1",
        "X-Invoiceflow-Event-Type": "InvoiceCreated",
        "X-Invoiceflow-Timestamp": str(NOW),
        "X-Invoiceflow-Signature": f"v1={expected}",
    }


def test_a_genuine_delivery_verifies() -> None:
    header = signature_header(SECRET, NOW, BODY)
    assert verify_signature(SECRET, str(NOW), BODY, header, now=NOW)
    assert verify_signature(SECRET, NOW, BODY.decode(), header, now=NOW + 299)
    assert verify_signature(SECRET, str(NOW), BODY, header, now=NOW - 299)
    # Several signatures in one header (e.g. a receiver trying its old and new secret): one must match.
    assert verify_signature(SECRET, str(NOW), BODY, f"v1={'0' * 64}, {header}", now=NOW)


def test_a_tampered_body_fails() -> None:
    header = signature_header(SECRET, NOW, BODY)
    tampered = BODY.replace(b"121.00", b"1.00")
    assert not verify_signature(SECRET, str(NOW), tampered, header, now=NOW)
    assert not verify_signature(SECRET, str(NOW), BODY + b" ", header, now=NOW)


def test_a_wrong_secret_fails() -> None:
    header = signature_header(SECRET, NOW, BODY)
    assert not verify_signature("whsec_another-secret-000000", str(NOW), BODY, header, now=NOW)
    assert not verify_signature("", str(NOW), BODY, header, now=NOW)
    forged = signature_header("whsec_another-secret-000000", NOW, BODY)
    assert not verify_signature(SECRET, str(NOW), BODY, forged, now=NOW)


def test_an_old_or_future_timestamp_fails_even_with_a_valid_signature() -> None:
    header = signature_header(SECRET, NOW, BODY)
    assert not verify_signature(SECRET, str(NOW), BODY, header, now=NOW + 301)
    assert not verify_signature(SECRET, str(NOW), BODY, header, now=NOW - 301)
    assert verify_signature(SECRET, str(NOW), BODY, header, tolerance=3600, now=NOW + 3000)
    # The timestamp is part of what is signed: moving it forward breaks the signature.
    assert not verify_signature(SECRET, str(NOW + 100), BODY, header, now=NOW + 100)


def test_malformed_headers_fail() -> None:
    good = signature_header(SECRET, NOW, BODY)
    digest = good.removeprefix("v1=")
    for header in (None, "", digest, f"v0={digest}", "v1=", "v1=zz", f"v1={digest.upper()}"):
        assert not verify_signature(SECRET, str(NOW), BODY, header, now=NOW), header
    for timestamp in (None, "", "abc", f"{NOW}.0", f"0{NOW}", "-1", "١٢٣"):
        assert not verify_signature(SECRET, timestamp, BODY, good, now=NOW), timestamp
    assert SIGNATURE_HEADER == "X-Invoiceflow-Signature"
    assert TIMESTAMP_HEADER == "X-Invoiceflow-Timestamp"
