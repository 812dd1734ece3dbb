"""The x402 challenge Tollgate's Swift code renders, read by the official x402 Python SDK.

The fixture is written by the Swift tests (TollgateX402Tests, X402FixtureTests), which also assert
it matches what the code renders today; no tollgate process is needed here. In the other direction,
the SDK signs payments for that challenge; with TOLLGATE_X402_WRITE_FIXTURES=1 they are written
beside the fixture, and the Swift tests decode them.
"""
import base64
import copy
import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from x402.http.utils import decode_payment_signature_header
from x402.schemas import PaymentPayload
from x402.schemas.v1 import PaymentPayloadV1

from x402_check import assert_valid_challenge, sdk_payment_headers

FIXTURES = Path(__file__).resolve().parents[2] / "Tests" / "TollgateX402Tests" / "Fixtures"
WRITE = os.environ.get("TOLLGATE_X402_WRITE_FIXTURES") == "1"


@pytest.fixture(scope="module")
def fixture():
    return json.loads((FIXTURES / "challenge-base-sepolia.json").read_text(encoding="utf-8"))


def check(fixture, headers=None, body=None, **overrides):
    expect = fixture["expect"]
    arguments = dict(
        amount=expect["amount"], pay_to=expect["payTo"], network_caip2=expect["networkCaip2"], asset=expect["asset"],
        extra_name=expect["extraName"], extra_version=expect["extraVersion"],
        max_timeout_seconds=expect["maxTimeoutSeconds"], resource_url=expect["resourceURL"],
    )
    arguments.update(overrides)
    return assert_valid_challenge(
        fixture["headers"] if headers is None else headers,
        fixture["body"].encode("utf-8") if body is None else body,
        **arguments,
    )


def test_sdk_accepts_the_swift_challenge(fixture):
    assert fixture["status"] == 402
    v2, v1 = check(fixture)
    assert v2.accepts[0].amount == "10000"  # 0.01 USDC
    assert v1.accepts[0].network == "base-sepolia"
    assert v2.resource.description == "Suche über Daten"


def test_header_names_are_case_insensitive(fixture):
    lowered = {name.lower(): value for name, value in fixture["headers"].items()}
    check(fixture, headers=lowered)


def _reencode(fixture, edit):
    """The fixture's headers with the v2 JSON edited and re-encoded."""
    data = json.loads(base64.b64decode(fixture["headers"]["PAYMENT-REQUIRED"]))
    edit(data)
    headers = dict(fixture["headers"])
    headers["PAYMENT-REQUIRED"] = base64.b64encode(json.dumps(data).encode()).decode()
    return headers


def _edit_v1(fixture, edit):
    data = json.loads(fixture["body"])
    edit(data)
    return json.dumps(data).encode()


@pytest.mark.parametrize("edit", [
    lambda d: d["accepts"][0].update(amount=10000),
    lambda d: d["accepts"][0].update(amount="10001"),
    lambda d: d["accepts"][0].update(amount="0.01"),
    lambda d: d["accepts"][0].update(maxTimeoutSeconds="60"),
    lambda d: d["accepts"][0].update(network="base-sepolia"),
    lambda d: d["accepts"][0].update(payTo="0x0000000000000000000000000000000000000001"),
    lambda d: d["accepts"][0]["extra"].pop("name"),
    lambda d: d["accepts"][0].pop("asset"),
    lambda d: d.pop("accepts"),
    lambda d: d.update(x402Version=1),
    lambda d: d.update(accepts=d["accepts"] * 2),
], ids=["amount-number", "amount-wrong", "amount-decimal", "timeout-string", "network-v1-name", "payto",
        "extra-name", "asset-missing", "accepts-missing", "version", "two-requirements"])
def test_checker_refuses_a_broken_v2_header(fixture, edit):
    with pytest.raises((AssertionError, ValidationError, ValueError)):
        check(fixture, headers=_reencode(fixture, edit))


@pytest.mark.parametrize("edit", [
    lambda d: d["accepts"][0].update(maxAmountRequired=10000),
    lambda d: d["accepts"][0].update(network="eip155:84532"),
    lambda d: d["accepts"][0].update(outputSchema={"type": "object"}),
    lambda d: d["accepts"][0].pop("payTo"),
    lambda d: d["accepts"][0].update(resource="https://elsewhere.example/"),
    lambda d: d.update(x402Version=2),
    lambda d: d.pop("error"),
], ids=["amount-number", "network-caip2", "output-schema", "payto-missing", "resource", "version", "error"])
def test_checker_refuses_a_broken_v1_body(fixture, edit):
    with pytest.raises((AssertionError, ValidationError, ValueError)):
        check(fixture, body=_edit_v1(fixture, edit))


def test_checker_refuses_missing_or_malformed_header(fixture):
    headers = dict(fixture["headers"])
    del headers["PAYMENT-REQUIRED"]
    with pytest.raises(AssertionError):
        check(fixture, headers=headers)
    unpadded = dict(fixture["headers"], **{"PAYMENT-REQUIRED": fixture["headers"]["PAYMENT-REQUIRED"].rstrip("=") + "A"})
    with pytest.raises((AssertionError, ValueError)):
        check(fixture, headers=unpadded)
    cacheable = dict(fixture["headers"], **{"Cache-Control": "max-age=60"})
    with pytest.raises(AssertionError):
        check(fixture, headers=cacheable)


def test_checker_compares_the_expected_values(fixture):
    for override in (dict(amount=10001), dict(pay_to="0x" + "1" * 40), dict(network_caip2="eip155:8453"),
                     dict(asset="0x" + "2" * 40), dict(extra_name="USD Coin")):
        with pytest.raises(AssertionError):
            check(fixture, **override)
    # Addresses compare case-insensitively, as on chain.
    check(fixture, pay_to=fixture["expect"]["payTo"].lower(), asset=fixture["expect"]["asset"].upper().replace("0X", "0x"))


def test_sdk_pays_the_swift_challenge_v2(fixture):
    headers = sdk_payment_headers(fixture["headers"], fixture["body"].encode("utf-8"), version=2)
    assert list(headers) == ["PAYMENT-SIGNATURE"]
    payment = decode_payment_signature_header(headers["PAYMENT-SIGNATURE"])
    assert isinstance(payment, PaymentPayload)
    required = json.loads(base64.b64decode(fixture["headers"]["PAYMENT-REQUIRED"]))
    # The client copies the requirement verbatim, which is what the server will match on.
    assert payment.accepted.model_dump(by_alias=True) == required["accepts"][0]
    authorization = payment.payload["authorization"]
    assert authorization["to"] == fixture["expect"]["payTo"]
    assert authorization["value"] == "10000"
    if WRITE:
        (FIXTURES / "sdk-payment-signature-v2.txt").write_text(headers["PAYMENT-SIGNATURE"] + "\n")


def test_sdk_pays_the_swift_challenge_v1(fixture):
    headers = sdk_payment_headers(fixture["headers"], fixture["body"].encode("utf-8"), version=1)
    assert list(headers) == ["X-PAYMENT"]
    payment = decode_payment_signature_header(headers["X-PAYMENT"])
    assert isinstance(payment, PaymentPayloadV1)
    assert (payment.scheme, payment.network) == ("exact", "base-sepolia")
    assert payment.payload["authorization"]["value"] == "10000"
    if WRITE:
        (FIXTURES / "sdk-x-payment-v1.txt").write_text(headers["X-PAYMENT"] + "\n")


@pytest.mark.parametrize("name,model", [("sdk-payment-signature-v2.txt", PaymentPayload),
                                        ("sdk-x-payment-v1.txt", PaymentPayloadV1)])
def test_committed_sdk_payments_are_sdk_payments(name, model):
    """The payments the Swift tests decode are ones the SDK itself reads back."""
    value = (FIXTURES / name).read_text().strip()
    assert isinstance(decode_payment_signature_header(value), model)
