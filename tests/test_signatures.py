"""Re-signing a capture: each provider's own verification code accepts what Hookscope signs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
import standardwebhooks
import stripe

from app.inspect import signatures

BODY = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded", "amount": 4200}).encode()


def test_stripe_accepts_a_re_signed_capture_hours_later():
    secret = "whsec_test_development_secret"
    old = int(time.time()) - 6 * 3600
    captured = [["Content-Type", "application/json"], ["Stripe-Signature", f"t={old},v1=00"]]
    with pytest.raises(stripe.SignatureVerificationError):  # stale, as a provider sent it
        stripe.WebhookSignature.verify_header(BODY, f"t={old},v1=00", secret, 300)

    headers = signatures.resign("stripe", secret, captured, BODY, int(time.time()))

    value = dict(headers)["Stripe-Signature"]
    assert headers[0] == ["Content-Type", "application/json"]  # in place, order kept
    assert stripe.WebhookSignature.verify_header(BODY, value, secret, 300)
    # The providers' Webhook.construct_event parses and checks together.
    event = stripe.Webhook.construct_event(BODY, value, secret)
    assert event["id"] == "evt_1"


def test_stripe_refuses_it_with_another_secret():
    headers = signatures.resign("stripe", "whsec_a", [], BODY, int(time.time()))

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(BODY, dict(headers)["Stripe-Signature"], "whsec_b")


def test_standard_webhooks_accepts_a_re_signed_capture_and_keeps_its_message_id():
    secret = "whsec_" + base64.b64encode(b"a development secret, 32 bytes!!").decode()
    captured = [
        ["webhook-id", "msg_2Lq"],
        ["webhook-timestamp", str(int(time.time()) - 86400)],
        ["webhook-signature", "v1,stale"],
        ["content-type", "application/json"],
    ]

    headers = signatures.resign("standard_webhooks", secret, captured, BODY, int(time.time()))

    assert [name for name, _ in headers] == [name for name, _ in captured]
    assert dict(headers)["webhook-id"] == "msg_2Lq"
    payload = standardwebhooks.Webhook(secret).verify(BODY, dict(headers))
    assert payload["id"] == "evt_1"


def test_standard_webhooks_gives_a_capture_without_headers_all_three():
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()

    headers = signatures.resign("standard_webhooks", secret, [], b"{}", int(time.time()))

    assert [n for n, _ in headers] == ["webhook-id", "webhook-timestamp", "webhook-signature"]
    assert standardwebhooks.Webhook(secret).verify(b"{}", dict(headers)) == {}


def test_a_standard_webhooks_secret_that_is_not_base64_is_refused():
    with pytest.raises(signatures.BadSecret, match="whsec_"):
        signatures.resign("standard_webhooks", "whsec_not base64!", [], BODY, 0)


def test_github_signature_matches_githubs_documented_check():
    """https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries:
    HMAC-SHA256 of the payload with the secret, hex, prefixed "sha256=", compared in constant
    time; the docs' own test vector is checked here too."""
    docs = signatures.resign("github", "It's a Secret to Everybody", [], b"Hello, World!", 0)
    assert dict(docs)["X-Hub-Signature-256"] == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )

    edited = BODY.replace(b"4200", b"9900")
    headers = signatures.resign(
        "github",
        "dev",
        [["X-Hub-Signature-256", "sha256=old"], ["X-Hub-Signature", "sha1=old"]],
        edited,
        0,
    )

    expected = "sha256=" + hmac.new(b"dev", edited, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(dict(headers)["X-Hub-Signature-256"], expected)
    legacy = "sha1=" + hmac.new(b"dev", edited, hashlib.sha1).hexdigest()
    assert dict(headers)["X-Hub-Signature"] == legacy


def test_shopify_signature_matches_shopifys_documented_check():
    """https://shopify.dev/docs/apps/build/webhooks/subscribe/https: base64 of the HMAC-SHA256
    of the raw body with the app's client secret, compared in constant time."""
    headers = signatures.resign("shopify", "shpss_dev", [["X-Shopify-Hmac-SHA256", "x"]], BODY, 0)

    digest = base64.b64encode(hmac.new(b"shpss_dev", BODY, hashlib.sha256).digest()).decode()
    assert headers == [["X-Shopify-Hmac-SHA256", digest]]  # the captured spelling is kept


def test_repeated_signature_headers_become_one():
    captured = [["X-Shopify-Hmac-Sha256", "a"], ["X", "1"], ["x-shopify-hmac-sha256", "b"]]

    headers = signatures.resign("shopify", "s", captured, b"", 0)

    assert [n for n, _ in headers] == ["X-Shopify-Hmac-Sha256", "X"]


def test_an_empty_secret_is_refused():
    with pytest.raises(signatures.BadSecret):
        signatures.resign("github", "", [], BODY, 0)
