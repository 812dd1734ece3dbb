"""Checks an x402 402 challenge with the official x402 Python SDK.

The SDK's own decoders and pydantic models read the `PAYMENT-REQUIRED` header (v2) and the JSON
body (v1), exactly as a paying client would, so a structure the SDK refuses fails here. On top of
that, the raw JSON is checked against the wire rules the models are lenient about (amounts are
strings of digits, `x402Version` and `maxTimeoutSeconds` are integers, base64 is standard and
padded), and every field is compared with what the server was configured to ask for.

`sdk_payment_headers` then has the SDK sign a payment for the challenge offline, which proves a
real client can pay it (and gives system tests a payment to send).
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Mapping

from eth_account import Account
from x402 import x402ClientSync
from x402.http import x402HTTPClientSync
from x402.http.constants import PAYMENT_REQUIRED_HEADER
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.v1.constants import V1_NETWORK_CHAIN_IDS
from x402.schemas import PaymentRequired, PaymentRequirements, PaymentRequiredV1, PaymentRequirementsV1

_DIGITS = re.compile(r"^(0|[1-9][0-9]*)$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Header lookup ignoring case, as HTTP does."""
    wanted = name.lower()
    found = [value for key, value in headers.items() if key.lower() == wanted]
    assert len(found) <= 1, f"{name} appears {len(found)} times"
    return found[0] if found else None


def _strict_base64_json(value: str) -> dict[str, Any]:
    """Standard base64 with padding, of UTF-8 JSON that is an object."""
    assert len(value) % 4 == 0, "PAYMENT-REQUIRED is not padded base64"
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error as error:
        raise AssertionError(f"PAYMENT-REQUIRED is not standard base64: {error}") from error
    data = json.loads(raw.decode("utf-8"))
    assert isinstance(data, dict), "PAYMENT-REQUIRED JSON is not an object"
    return data


def v1_network_name(network_caip2: str) -> str:
    """The v1 name the SDK uses for a CAIP-2 EVM network (`eip155:84532` -> `base-sepolia`)."""
    names = [name for name, chain in V1_NETWORK_CHAIN_IDS.items() if f"eip155:{chain}" == network_caip2]
    assert len(names) == 1, f"the x402 SDK knows no single v1 name for {network_caip2}: {names}"
    return names[0]


def _assert_raw_requirement(raw: dict[str, Any], amount_key: str, amount: int, where: str) -> None:
    """The JSON types the pydantic models would coerce or not check."""
    assert isinstance(raw.get(amount_key), str) and _DIGITS.match(raw[amount_key]), \
        f"{where}.{amount_key} must be a string of digits, got {raw.get(amount_key)!r}"
    assert int(raw[amount_key]) == amount, f"{where}.{amount_key} is {raw[amount_key]}, expected {amount}"
    timeout = raw.get("maxTimeoutSeconds")
    assert type(timeout) is int and timeout > 0, f"{where}.maxTimeoutSeconds must be a positive integer, got {timeout!r}"
    for key in ("asset", "payTo"):
        assert isinstance(raw.get(key), str) and _ADDRESS.match(raw[key]), f"{where}.{key} is not an EVM address"
    extra = raw.get("extra")
    assert isinstance(extra, dict), f"{where}.extra must be an object"
    for key in ("name", "version"):
        assert isinstance(extra.get(key), str) and extra[key], f"{where}.extra.{key} (EIP-712 domain) is missing"


def assert_valid_challenge(
    headers: Mapping[str, str],
    body: bytes,
    *,
    amount: int,
    pay_to: str,
    network_caip2: str,
    asset: str,
    extra_name: str | None = None,
    extra_version: str | None = None,
    max_timeout_seconds: int | None = None,
    resource_url: str | None = None,
) -> tuple[PaymentRequired, PaymentRequiredV1]:
    """Asserts that a 402 response carries a complete x402 challenge for `amount` atomic units.

    Checks the v2 `PAYMENT-REQUIRED` header and the v1 JSON body with the SDK's models, their JSON
    types, and that both offer exactly one `exact` requirement with the given amount, payTo,
    network and asset (addresses compared case-insensitively, as on chain), the same EIP-712
    domain and timeout, and the same resource. Returns the SDK's decoded models.
    """
    assert amount > 0, "a challenge is for a positive amount"
    sdk = x402HTTPClientSync(x402ClientSync())

    # v2: the header, decoded by the SDK the way a paying client does.
    value = _header(headers, PAYMENT_REQUIRED_HEADER)
    assert value, "no PAYMENT-REQUIRED header"
    raw_v2 = _strict_base64_json(value)
    v2 = sdk.get_payment_required_response(lambda name: _header(headers, name), body)
    assert isinstance(v2, PaymentRequired), f"the SDK read {type(v2).__name__}, not a v2 PaymentRequired"
    assert type(raw_v2.get("x402Version")) is int and v2.x402_version == 2, "v2 x402Version must be the integer 2"
    assert v2.resource is not None and v2.resource.url, "v2 resource.url is missing"
    assert len(v2.accepts) == 1 and len(raw_v2["accepts"]) == 1, "expected exactly one v2 requirement"
    _assert_raw_requirement(raw_v2["accepts"][0], "amount", amount, "accepts[0]")
    req: PaymentRequirements = v2.accepts[0]
    assert req.scheme == "exact", f"v2 scheme is {req.scheme}, expected exact"
    assert req.network == network_caip2, f"v2 network is {req.network}, expected {network_caip2}"
    assert req.amount == str(amount), f"v2 amount is {req.amount}, expected {amount}"
    assert req.asset.lower() == asset.lower(), f"v2 asset is {req.asset}, expected {asset}"
    assert req.pay_to.lower() == pay_to.lower(), f"v2 payTo is {req.pay_to}, expected {pay_to}"
    if extra_name is not None:
        assert req.extra["name"] == extra_name, f"v2 extra.name is {req.extra['name']}, expected {extra_name}"
    if extra_version is not None:
        assert req.extra["version"] == extra_version, \
            f"v2 extra.version is {req.extra['version']}, expected {extra_version}"
    if max_timeout_seconds is not None:
        assert req.max_timeout_seconds == max_timeout_seconds, \
            f"v2 maxTimeoutSeconds is {req.max_timeout_seconds}, expected {max_timeout_seconds}"
    if resource_url is not None:
        assert v2.resource.url == resource_url, f"v2 resource.url is {v2.resource.url}, expected {resource_url}"

    # v1: the body, decoded by the SDK's v1 path (used when no v2 header is present).
    raw_v1 = json.loads(body.decode("utf-8"))
    assert isinstance(raw_v1, dict), "the 402 body is not a JSON object"
    assert type(raw_v1.get("x402Version")) is int, "v1 x402Version must be an integer"
    v1 = sdk.get_payment_required_response(lambda _name: None, body)
    assert isinstance(v1, PaymentRequiredV1), f"the SDK read {type(v1).__name__}, not a v1 PaymentRequired"
    assert isinstance(raw_v1.get("error"), str), "the v1 body has no error string"
    assert len(v1.accepts) == 1 and len(raw_v1["accepts"]) == 1, "expected exactly one v1 requirement"
    raw_req_v1 = raw_v1["accepts"][0]
    _assert_raw_requirement(raw_req_v1, "maxAmountRequired", amount, "v1 accepts[0]")
    assert raw_req_v1.get("outputSchema") is None, "v1 outputSchema should be omitted or null"
    for key in ("description", "mimeType", "resource"):
        assert isinstance(raw_req_v1.get(key), str), f"v1 accepts[0].{key} must be a string"
    req_v1: PaymentRequirementsV1 = v1.accepts[0]
    assert req_v1.scheme == "exact", f"v1 scheme is {req_v1.scheme}, expected exact"
    expected_name = v1_network_name(network_caip2)
    assert req_v1.network == expected_name, f"v1 network is {req_v1.network}, expected {expected_name}"
    assert req_v1.max_amount_required == str(amount), f"v1 maxAmountRequired is {req_v1.max_amount_required}"
    assert req_v1.asset.lower() == asset.lower(), f"v1 asset is {req_v1.asset}, expected {asset}"
    assert req_v1.pay_to.lower() == pay_to.lower(), f"v1 payTo is {req_v1.pay_to}, expected {pay_to}"

    # Both versions describe the same offer.
    assert req_v1.resource == v2.resource.url, f"v1 resource {req_v1.resource} differs from v2 {v2.resource.url}"
    assert req_v1.max_timeout_seconds == req.max_timeout_seconds, "v1 and v2 maxTimeoutSeconds differ"
    assert req_v1.extra == req.extra, f"v1 extra {req_v1.extra} differs from v2 {req.extra}"
    assert (req_v1.asset, req_v1.pay_to) == (req.asset, req.pay_to), "v1 and v2 asset or payTo differ"
    assert v1.error == v2.error, f"v1 error {v1.error!r} differs from v2 {v2.error!r}"

    assert (_header(headers, "Cache-Control") or "").lower() == "no-store", "a 402 challenge must be Cache-Control: no-store"
    return v2, v1


def sdk_payment_headers(headers: Mapping[str, str], body: bytes, *, version: int = 2,
                        account: Any = None) -> dict[str, str]:
    """Has the SDK sign a payment for the challenge, offline, as a v2 or v1 client would.

    Returns the header to retry with: `{"PAYMENT-SIGNATURE": ...}` for v2, `{"X-PAYMENT": ...}`
    for v1. The signature is a real EIP-712 signature by `account` (a fresh one by default).
    """
    client = x402ClientSync()
    register_exact_evm_client(client, account or Account.create())
    http = x402HTTPClientSync(client)
    if version == 2:
        required = http.get_payment_required_response(lambda name: _header(headers, name), body)
    else:
        required = http.get_payment_required_response(lambda _name: None, body)
    assert required.x402_version == version, f"the SDK read a v{required.x402_version} challenge"
    payload = client.create_payment_payload(required)
    return http.encode_payment_signature_header(payload)
