"""The local x402 facilitator (tools/facilitator/facilitator.py), driven over HTTP.

The facilitator runs as a subprocess on a free port; no tollgate binary is needed. Payments are made
by the official x402 Python SDK: it reads a 402 challenge and signs an EIP-3009 authorization with a
fresh local key (`x402_check.sdk_payment_headers`), or, for the time-bound cases the SDK's client
never produces, the SDK's own EIP-712 helpers and signer sign an authorization with chosen bounds.
The happy path goes through the SDK's facilitator client as well, so the answers are read by the
SDK's models.
"""
from __future__ import annotations

import base64
import copy
import json
import re
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from eth_account import Account
from x402.http import HTTPFacilitatorClientSync
from x402.http.utils import decode_payment_signature_header
from x402.mechanisms.evm.eip712 import build_typed_data_for_signing
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.mechanisms.evm.types import ExactEIP3009Authorization
from x402.schemas import PaymentRequirements, SettleResponse, SupportedResponse, VerifyResponse
from x402.schemas.v1 import PaymentRequirementsV1

from conftest import ROOT, Process, free_port, wait_until
from x402_check import sdk_payment_headers, v1_network_name

FACILITATOR = ROOT / "tools" / "facilitator" / "facilitator.py"
FIXTURES = ROOT / "Tests" / "TollgateX402Tests" / "Fixtures"

PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
OTHER = "0x1111111111111111111111111111111111111111"
USDC_BASE_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
RESOURCE = "https://api.example.com/v1/search"
TX_HASH = re.compile(r"^0x[0-9a-f]{64}$")


# -- the facilitator process -----------------------------------------------------------------


class Facilitator:
    def __init__(self, directory: Path, args=(), name="facilitator"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, FACILITATOR, "--listen", f"127.0.0.1:{self.port}", *args]
        self.directory = directory
        self.name = name
        self.process = None
        self.start()

    def start(self):
        self.process = Process(self.name, self.args, self.directory)
        wait_until(lambda: requests.get(f"{self.url}/healthz", timeout=1).ok, what="facilitator ready")

    def post(self, path, body=None, *, raw=None, timeout=10, headers=None):
        data = raw if raw is not None else json.dumps(body)
        return requests.post(f"{self.url}{path}", data=data, timeout=timeout,
                             headers={"Content-Type": "application/json", **(headers or {})})

    def get(self, path, timeout=10, headers=None):
        return requests.get(f"{self.url}{path}", timeout=timeout, headers=headers or {})

    def control(self, **changes):
        response = self.post("/_control", changes)
        assert response.status_code == 200, response.text
        return response.json()["control"]

    def settlements(self):
        return self.get("/_settlements").json()["settlements"]


@pytest.fixture
def start(tmp_path, request):
    started = []

    def make(*args, name=None):
        f = Facilitator(tmp_path, args, name or f"facilitator-{len(started) + 1}")
        started.append(f)
        return f

    yield make
    failed = getattr(request.node, "rep_call", None)
    for f in started:
        if failed is not None and failed.failed:
            print(f"---- {f.name} log ----\n{f.process.log_tail()}")
        f.process.kill()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One facilitator for the tests that leave it as they found it (they reset it first)."""
    f = Facilitator(tmp_path_factory.mktemp("facilitator"), name="shared-facilitator")
    yield f
    f.process.kill()


@pytest.fixture
def fac(shared, request):
    assert shared.process.alive(), shared.process.log_tail()
    assert shared.post("/_reset", {}).status_code == 200
    yield shared
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(f"---- shared facilitator log ----\n{shared.process.log_tail()}")


# -- payments made by the SDK -----------------------------------------------------------------


def challenge(amount=10000, pay_to=PAY_TO, asset=USDC_BASE_SEPOLIA, network="eip155:84532", name="USDC",
              version="2", timeout=60):
    """A 402 challenge as a resource server speaking v1 and v2 sends it: headers and body."""
    extra = {"name": name, "version": version}
    v2 = {"scheme": "exact", "network": network, "amount": str(amount), "asset": asset, "payTo": pay_to,
          "maxTimeoutSeconds": timeout, "extra": extra}
    v1 = {"scheme": "exact", "network": v1_network_name(network), "maxAmountRequired": str(amount),
          "resource": RESOURCE, "description": "search", "mimeType": "application/json", "payTo": pay_to,
          "maxTimeoutSeconds": timeout, "asset": asset, "extra": dict(extra)}
    required = {"x402Version": 2, "error": "payment_required", "resource": {"url": RESOURCE}, "accepts": [v2]}
    headers = {"PAYMENT-REQUIRED": base64.b64encode(json.dumps(required).encode()).decode(),
               "Cache-Control": "no-store"}
    body = json.dumps({"x402Version": 1, "error": "payment_required", "accepts": [v1]}).encode()
    return headers, body


def requirements_of(headers, body, version):
    if version == 2:
        return json.loads(base64.b64decode(headers["PAYMENT-REQUIRED"]))["accepts"][0]
    return json.loads(body)["accepts"][0]


def pay(version, account=None, **challenge_args):
    """(request body for /verify and /settle, the payer's account): the SDK pays a fresh challenge."""
    account = account or Account.create()
    headers, body = challenge(**challenge_args)
    sent = sdk_payment_headers(headers, body, version=version, account=account)
    payload = json.loads(base64.b64decode(next(iter(sent.values()))))
    assert payload["x402Version"] == version
    return {"x402Version": version, "paymentPayload": payload,
            "paymentRequirements": requirements_of(headers, body, version)}, account


def resign(request_body, account, *, valid_after=None, valid_before=None):
    """The same payment, its authorization re-signed by `account` with other time bounds, using the
    SDK's EIP-712 helpers and signer (its client always picks the bounds itself)."""
    body = copy.deepcopy(request_body)
    auth = body["paymentPayload"]["payload"]["authorization"]
    if valid_after is not None:
        auth["validAfter"] = str(valid_after)
    if valid_before is not None:
        auth["validBefore"] = str(valid_before)
    req = body["paymentRequirements"]
    chain = 84532 if req["network"] in ("eip155:84532", "base-sepolia") else 8453
    authorization = ExactEIP3009Authorization(from_address=auth["from"], to=auth["to"], value=auth["value"],
                                              valid_after=auth["validAfter"], valid_before=auth["validBefore"],
                                              nonce=auth["nonce"])
    domain, types, primary, message = build_typed_data_for_signing(
        authorization, chain, req["asset"], req["extra"]["name"], req["extra"]["version"])
    signature = EthAccountSigner(account).sign_typed_data(domain, types, primary, message)
    body["paymentPayload"]["payload"]["signature"] = "0x" + signature.hex()
    return body


def verify(f, body, **kw):
    response = f.post("/verify", body, **kw)
    return response, response.json()


def settle(f, body, **kw):
    response = f.post("/settle", body, **kw)
    return response, response.json()


def assert_refused(f, body, reason, *, status=200):
    """Refused at /verify and at /settle with `reason`, and nothing was settled."""
    before = len(f.settlements())
    response, answer = verify(f, body)
    assert (response.status_code, answer["isValid"], answer.get("invalidReason")) == (status, False, reason), answer
    assert answer["invalidMessage"]
    response, answer = settle(f, body)
    assert (response.status_code, answer["success"], answer.get("errorReason")) == (status, False, reason), answer
    assert answer["transaction"] == ""
    assert answer["extra"]["chain"] == "none"
    assert len(f.settlements()) == before


# -- /supported -------------------------------------------------------------------------------


def test_supported_lists_exact_v1_and_v2_for_the_default_network_and_says_it_is_offline(fac):
    response = fac.get("/supported")
    assert response.status_code == 200
    assert response.headers["X-Tollgate-Facilitator"].startswith("local; chain=none")
    raw = response.json()
    supported = SupportedResponse.model_validate(raw)  # the SDK's model reads it
    kinds = {(k.x402_version, k.scheme, k.network) for k in supported.kinds}
    assert kinds == {(2, "exact", "eip155:84532"), (1, "exact", "base-sepolia")}
    assert raw["extensions"] == [] and raw["signers"] == {}
    assert raw["extra"]["chain"] == "none" and "touches no chain" in raw["extra"]["note"]
    for kind in raw["kinds"]:
        assert type(kind["x402Version"]) is int


def test_supported_lists_the_configured_networks_and_the_startup_line_says_offline(start):
    f = start("--network", "eip155:8453", "--network", "base-sepolia")
    kinds = {(k["x402Version"], k["scheme"], k["network"]) for k in f.get("/supported").json()["kinds"]}
    assert kinds == {(2, "exact", "eip155:8453"), (1, "exact", "base"),
                     (2, "exact", "eip155:84532"), (1, "exact", "base-sepolia")}
    assert "touches no chain" in f.process.log_tail()
    # The SDK's facilitator client reads it too.
    supported = HTTPFacilitatorClientSync({"url": f.url}).get_supported()
    assert len(supported.kinds) == 4


def test_no_signature_check_is_for_benchmarks_and_keeps_every_other_check(start):
    """`--no-signature-check` (what the payments benchmark runs, so the facilitator answers at once)
    takes a tampered signature, says so at start, and still refuses the wrong amount or an expiry."""
    f = start("--no-signature-check")
    assert "SIGNATURES NOT CHECKED" in f.process.log_tail()
    body, _ = pay(2)
    raised = copy.deepcopy(body)
    raised["paymentPayload"]["payload"]["authorization"]["value"] = "20000"
    raised["paymentRequirements"]["amount"] = "20000"
    assert verify(f, raised)[1]["isValid"] is True  # the signature no longer covers it, and is not checked
    short = copy.deepcopy(body)
    short["paymentPayload"]["payload"]["authorization"]["value"] = "1"
    assert_refused(f, short, "invalid_exact_evm_payload_authorization_value_mismatch")
    assert settle(f, body)[1]["success"] is True
    assert settle(f, body)[1]["success"] is False  # the nonce is still used once


def test_an_unknown_network_flag_is_refused_at_start(tmp_path):
    import subprocess
    result = subprocess.run([sys.executable, FACILITATOR, "--network", "eip155:nope"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "unknown network" in result.stderr


# -- the paid path ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [2, 1])
def test_a_valid_payment_verifies_and_settles_once_through_the_sdk_facilitator_client(fac, version):
    body, account = pay(version)
    client = HTTPFacilitatorClientSync({"url": fac.url})
    header = base64.b64encode(json.dumps(body["paymentPayload"]).encode()).decode()
    payload = decode_payment_signature_header(header)
    requirements = (PaymentRequirements if version == 2 else PaymentRequirementsV1).model_validate(
        body["paymentRequirements"])

    verified = client.verify(payload, requirements)
    assert isinstance(verified, VerifyResponse)
    assert verified.is_valid and verified.payer == account.address, verified
    assert fac.settlements() == []  # verify commits nothing

    settled = client.settle(payload, requirements)
    assert isinstance(settled, SettleResponse)
    assert settled.success, settled
    assert TX_HASH.match(settled.transaction)
    assert settled.network == body["paymentRequirements"]["network"]
    assert settled.payer == account.address
    assert settled.amount == "10000"
    assert settled.extra["chain"] == "none"

    [record] = fac.settlements()
    assert record["transaction"] == settled.transaction
    assert (record["payer"], record["payTo"], record["amount"], record["asset"]) == \
        (account.address, PAY_TO, "10000", USDC_BASE_SEPOLIA)
    assert record["nonce"] == body["paymentPayload"]["payload"]["authorization"]["nonce"].lower()
    assert record["status"] == "settled" and record["x402Version"] == version

    # The same nonce: verify now reports it as used, and settle refuses it.
    again = client.verify(payload, requirements)
    assert (again.is_valid, again.invalid_reason) == (False, "invalid_exact_evm_nonce_already_used")
    twice = client.settle(payload, requirements)
    assert (twice.success, twice.error_reason) == (False, "invalid_exact_evm_nonce_already_used")
    assert len(fac.settlements()) == 1


def test_settle_answers_carry_the_offline_header_and_note(fac):
    body, _ = pay(2)
    response, answer = settle(fac, body)
    assert answer["success"] is True
    assert "chain=none" in response.headers["X-Tollgate-Facilitator"]
    assert "touches no chain" in answer["extra"]["note"]
    # Deterministic from the nonce: a refusal of the same payment names no transaction, the ledger
    # keeps the one it made up.
    _, again = settle(fac, body)
    assert again["transaction"] == "" and answer["transaction"] in again["errorMessage"]


def test_verify_is_read_only_until_settled(fac):
    body, account = pay(2)
    for _ in range(3):
        response, answer = verify(fac, body)
        assert response.status_code == 200 and answer == {"isValid": True, "payer": account.address,
                                                           "extra": answer["extra"]}
    assert fac.settlements() == []
    assert settle(fac, body)[1]["success"] is True


def test_the_same_nonce_settles_once_under_concurrency(fac):
    body, _ = pay(2)
    results = []
    barrier = threading.Barrier(8)

    def attempt():
        barrier.wait()
        results.append(settle(fac, body)[1])

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 8
    assert sum(r["success"] for r in results) == 1
    assert {r.get("errorReason") for r in results if not r["success"]} == {"invalid_exact_evm_nonce_already_used"}
    assert len(fac.settlements()) == 1


def test_two_payments_by_one_payer_both_settle(fac):
    account = Account.create()
    first, _ = pay(2, account)
    second, _ = pay(2, account)
    a, b = settle(fac, first)[1], settle(fac, second)[1]
    assert a["success"] and b["success"] and a["transaction"] != b["transaction"]


@pytest.mark.parametrize("version", [2, 1])
def test_the_swift_challenge_fixture_is_paid_and_settled(fac, version):
    """The challenge Tollgate's Swift code renders, paid by the SDK, settles here."""
    fixture = json.loads((FIXTURES / "challenge-base-sepolia.json").read_text(encoding="utf-8"))
    headers, body = fixture["headers"], fixture["body"].encode("utf-8")
    sent = sdk_payment_headers(headers, body, version=version)
    request = {"x402Version": version, "paymentPayload": json.loads(base64.b64decode(next(iter(sent.values())))),
               "paymentRequirements": requirements_of(headers, body, version)}
    assert verify(fac, request)[1]["isValid"] is True
    answer = settle(fac, request)[1]
    assert answer["success"] is True and answer["amount"] == str(fixture["expect"]["amount"])


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [2, 1])
def test_wrong_pay_to_is_refused(fac, version):
    body, _ = pay(version)
    body["paymentRequirements"]["payTo"] = OTHER
    assert_refused(fac, body, "invalid_exact_evm_payload_recipient_mismatch")


@pytest.mark.parametrize("version", [2, 1])
def test_wrong_amount_is_refused(fac, version):
    body, _ = pay(version)
    key = "amount" if version == 2 else "maxAmountRequired"
    body["paymentRequirements"][key] = "10001"
    assert_refused(fac, body, "invalid_exact_evm_payload_authorization_value_mismatch")
    body["paymentRequirements"][key] = "9999"  # exact: more is not "enough", less is not either
    assert_refused(fac, body, "invalid_exact_evm_payload_authorization_value_mismatch")


@pytest.mark.parametrize("version", [2, 1])
def test_a_tampered_amount_or_recipient_breaks_the_signature(fac, version):
    body, _ = pay(version)
    key = "amount" if version == 2 else "maxAmountRequired"
    raised = copy.deepcopy(body)
    raised["paymentPayload"]["payload"]["authorization"]["value"] = "20000"
    raised["paymentRequirements"][key] = "20000"
    assert_refused(fac, raised, "invalid_exact_evm_payload_signature")
    redirected = copy.deepcopy(body)
    redirected["paymentPayload"]["payload"]["authorization"]["to"] = OTHER
    redirected["paymentRequirements"]["payTo"] = OTHER
    assert_refused(fac, redirected, "invalid_exact_evm_payload_signature")
    assert settle(fac, body)[1]["success"] is True  # the untampered payment is fine


@pytest.mark.parametrize("version", [2, 1])
def test_expired_and_not_yet_valid_authorizations_are_refused(fac, version):
    body, account = pay(version)
    now = int(time.time())
    assert_refused(fac, resign(body, account, valid_before=now - 10), "invalid_exact_evm_payload_authorization_valid_before")
    # Expiring within the settlement margin (6 s by default) is refused too.
    assert_refused(fac, resign(body, account, valid_before=now + 3), "invalid_exact_evm_payload_authorization_valid_before")
    assert_refused(fac, resign(body, account, valid_after=now + 600), "invalid_exact_evm_payload_authorization_valid_after")
    # The re-signing itself is sound: sensible bounds pass.
    fine = resign(body, account, valid_after=now - 5, valid_before=now + 120)
    assert settle(fac, fine)[1]["success"] is True


@pytest.mark.parametrize("version", [2, 1])
def test_a_network_this_facilitator_does_not_serve_is_refused(fac, version):
    body, _ = pay(version)
    body["paymentRequirements"]["network"] = "eip155:8453" if version == 2 else "base"
    assert_refused(fac, body, "invalid_network")
    body, _ = pay(version)
    body["paymentRequirements"]["network"] = "base-sepolia" if version == 2 else "eip155:84532"  # other version's name
    assert_refused(fac, body, "invalid_network")


@pytest.mark.parametrize("version", [2, 1])
def test_a_payment_for_another_served_network_is_refused(start, version):
    f = start("--network", "eip155:84532", "--network", "eip155:8453")
    body, _ = pay(version)  # signed for Base Sepolia
    body["paymentRequirements"]["network"] = "eip155:8453" if version == 2 else "base"
    assert_refused(f, body, "invalid_network")
    # A payment made for Base mainnet settles there.
    mainnet, _ = pay(version, network="eip155:8453", asset=USDC_BASE, name="USD Coin")
    answer = settle(f, mainnet)[1]
    assert answer["success"] is True and answer["network"] == ("eip155:8453" if version == 2 else "base")


@pytest.mark.parametrize("version", [2, 1])
def test_a_payment_for_another_asset_or_token_domain_is_refused(fac, version):
    body, _ = pay(version)
    body["paymentRequirements"]["asset"] = USDC_BASE  # signed for the Base Sepolia USDC contract
    assert_refused(fac, body, "invalid_exact_evm_payload_signature")
    body, _ = pay(version)
    body["paymentRequirements"]["extra"]["name"] = "USD Coin"  # signed under name USDC
    assert_refused(fac, body, "invalid_exact_evm_payload_signature")


@pytest.mark.parametrize("version", [2, 1])
def test_bad_signatures_are_refused(fac, version):
    body, payer = pay(version)

    def with_signature(signature):
        changed = copy.deepcopy(body)
        changed["paymentPayload"]["payload"]["signature"] = signature
        return changed

    signature = bytes.fromhex(body["paymentPayload"]["payload"]["signature"][2:])
    assert len(signature) == 65 and signature[64] in (27, 28)
    flipped = bytearray(signature)
    flipped[10] ^= 0x01
    assert_refused(fac, with_signature("0x" + flipped.hex()), "invalid_exact_evm_payload_signature")
    # Signed by someone else, claiming to be the payer.
    forged = resign(body, Account.create())
    assert forged["paymentPayload"]["payload"]["authorization"]["from"] == payer.address
    assert_refused(fac, forged, "invalid_exact_evm_payload_signature")
    # The malleable twin (s -> n - s, v flipped) recovers to the payer but the token refuses it.
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(signature[32:64], "big")
    twin = signature[:32] + (n - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    assert_refused(fac, with_signature("0x" + twin.hex()), "invalid_exact_evm_payload_signature")
    assert_refused(fac, with_signature("0x" + signature[:64].hex()), "invalid_exact_evm_payload_signature")
    assert_refused(fac, with_signature("0x" + (signature + b"\x00" * 32).hex()), "invalid_exact_evm_payload_signature")
    assert_refused(fac, with_signature("0x" + signature[:64].hex() + "01"), "invalid_exact_evm_payload_signature")
    assert_refused(fac, with_signature("not hex"), "invalid_payload")
    assert settle(fac, body)[1]["success"] is True


def test_schemes_and_versions_are_checked(fac):
    body, _ = pay(2)
    upto = copy.deepcopy(body)
    upto["paymentRequirements"]["scheme"] = "upto"
    assert_refused(fac, upto, "unsupported_scheme")
    paid_upto = copy.deepcopy(body)
    paid_upto["paymentPayload"]["accepted"]["scheme"] = "upto"
    assert_refused(fac, paid_upto, "unsupported_scheme")
    v1_body, _ = pay(1)
    v1_upto = copy.deepcopy(v1_body)
    v1_upto["paymentPayload"]["scheme"] = "upto"
    assert_refused(fac, v1_upto, "unsupported_scheme")

    three = copy.deepcopy(body)
    three["paymentPayload"]["x402Version"] = 3
    three["x402Version"] = 3
    assert_refused(fac, three, "invalid_x402_version")
    mixed = copy.deepcopy(body)
    mixed["x402Version"] = 1
    assert_refused(fac, mixed, "invalid_x402_version")
    # A v2 payload against v1 requirements (maxAmountRequired, no amount) is not a v2 request.
    crossed = copy.deepcopy(body)
    crossed["paymentRequirements"] = v1_body["paymentRequirements"]
    assert_refused(fac, crossed, "invalid_payment_requirements")


def test_malformed_payloads_and_requirements_are_refused_with_reasons(fac):
    body, _ = pay(2)

    def edited(edit):
        changed = copy.deepcopy(body)
        edit(changed)
        return changed

    auth = lambda b: b["paymentPayload"]["payload"]["authorization"]  # noqa: E731
    reqs = lambda b: b["paymentRequirements"]  # noqa: E731
    for edit in (lambda b: auth(b).update(value=10000), lambda b: auth(b).update(value="1e4"),
                 lambda b: auth(b).update(validBefore=int(auth(b)["validBefore"])),
                 lambda b: auth(b).update(nonce="0x" + "0" * 66), lambda b: auth(b).update(nonce="nonce"),
                 lambda b: auth(b).update(to="0x1234"), lambda b: auth(b).pop("from"),
                 lambda b: b["paymentPayload"]["payload"].pop("signature"),
                 lambda b: b["paymentPayload"].update(payload=[]),
                 lambda b: b["paymentPayload"].pop("accepted"),
                 lambda b: auth(b).update(value=str(1 << 256))):
        assert_refused(fac, edited(edit), "invalid_payload")
    for edit in (lambda b: reqs(b).update(amount="0.01"), lambda b: reqs(b).update(amount=10000),
                 lambda b: reqs(b).pop("extra"), lambda b: reqs(b)["extra"].pop("version"),
                 lambda b: reqs(b).update(payTo="nobody"), lambda b: reqs(b).update(asset=None),
                 lambda b: reqs(b).update(network=84532)):
        assert_refused(fac, edited(edit), "invalid_payment_requirements")
    assert settle(fac, body)[1]["success"] is True


def test_whatever_the_body_the_answer_is_json_and_the_facilitator_lives(fac):
    bodies = [b"", b"null", b"[]", b"{}", b"\xff\xfe", b"{\"paymentPayload\": 1}", b"not json at all",
              b'{"paymentPayload": {"x402Version": 2}, "paymentRequirements": {}}',
              b'{"paymentPayload": {"x402Version": true, "payload": {}}, "paymentRequirements": {"scheme": "exact"}}',
              json.dumps({"paymentPayload": {"x402Version": 2, "accepted": {"scheme": "exact"}},
                          "paymentRequirements": {"scheme": "exact", "network": "eip155:84532", "amount": "9" * 100,
                                                  "asset": USDC_BASE_SEPOLIA, "payTo": PAY_TO,
                                                  "extra": {"name": "USDC", "version": "2"}}}).encode(),
              b"[" * 5000 + b"]" * 5000]
    for raw in bodies:
        for path, flag in (("/verify", "isValid"), ("/settle", "success")):
            response = fac.post(path, raw=raw)
            assert response.status_code in (200, 400), (raw[:60], response.status_code, response.text)
            answer = response.json()
            assert answer[flag] is False and answer.get("invalidReason" if flag == "isValid" else "errorReason")
            if path == "/settle":
                assert answer["transaction"] == "" and isinstance(answer["network"], str)
    # A chunked body (requests sends one for a generator) is read as well.
    body, _ = pay(2)
    encoded = json.dumps(body).encode()
    chunked = requests.post(f"{fac.url}/verify", data=iter([encoded[:100], encoded[100:]]), timeout=10)
    assert chunked.request.headers.get("Transfer-Encoding") == "chunked"
    assert chunked.json()["isValid"] is True
    too_large = fac.post("/settle", raw=b" " * ((1 << 20) + 1))
    assert too_large.status_code == 413 and too_large.json()["error"]
    assert fac.get("/nowhere").status_code == 404 and fac.get("/nowhere").json()["error"]
    assert fac.get("/verify").status_code == 405 and fac.get("/verify").json()["error"]
    assert fac.process.alive()
    assert fac.settlements() == []


# -- failure injection ------------------------------------------------------------------------


def test_settle_fail_records_nothing_and_leaves_the_nonce_unspent(fac):
    body, account = pay(2)
    fac.control(settle="fail")
    response, answer = settle(fac, body)
    assert response.status_code == 200
    assert (answer["success"], answer["errorReason"], answer["transaction"]) == (False, "unexpected_settle_error", "")
    assert answer["payer"] == account.address and answer["network"] == "eip155:84532"
    assert fac.settlements() == []
    fac.control(settle_reason="invalid_transaction_state")
    assert settle(fac, body)[1]["errorReason"] == "invalid_transaction_state"
    fac.control(settle="ok")
    assert settle(fac, body)[1]["success"] is True


def test_settle_pending_is_not_a_success_and_spends_the_nonce(fac):
    body, account = pay(1)
    fac.control(settle="pending")
    response, answer = settle(fac, body)
    assert answer["success"] is False and answer["errorReason"] == "settlement_pending"
    assert TX_HASH.match(answer["transaction"]) and answer["payer"] == account.address
    SettleResponse.model_validate(answer)
    [record] = fac.settlements()
    assert record["status"] == "pending" and record["transaction"] == answer["transaction"]
    fac.control(settle="ok")
    assert settle(fac, body)[1]["errorReason"] == "invalid_exact_evm_nonce_already_used"
    assert verify(fac, body)[1]["invalidReason"] == "invalid_exact_evm_nonce_already_used"


def test_settle_garbage_and_5xx(fac):
    body, _ = pay(2)
    fac.control(settle="garbage")
    response = fac.post("/settle", body)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    fac.control(settle="5xx")
    response = fac.post("/settle", body)
    assert response.status_code == 503 and response.json()["error"]
    fac.control(error_status=500)
    assert fac.post("/settle", body).status_code == 500
    assert fac.settlements() == []
    # The SDK's client treats both as failures.
    client = HTTPFacilitatorClientSync({"url": fac.url})
    payload = decode_payment_signature_header(base64.b64encode(json.dumps(body["paymentPayload"]).encode()).decode())
    requirements = PaymentRequirements.model_validate(body["paymentRequirements"])
    with pytest.raises(Exception):
        client.settle(payload, requirements)
    fac.control(settle="garbage")
    with pytest.raises(Exception):
        client.settle(payload, requirements)
    fac.control(settle="ok")
    assert client.settle(payload, requirements).success


def test_settle_timeout_outlasts_the_client_and_then_settles(fac):
    body, _ = pay(2)
    fac.control(settle="timeout", timeout_s=2)
    began = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        fac.post("/settle", body, timeout=0.5)
    # The client gave up; the facilitator answers after its sleep as in ok mode, so the settlement
    # appears (a timeout tells the client nothing about whether money moved).
    [record] = wait_until(lambda: fac.settlements(), timeout=10, what="the late settlement")
    assert time.monotonic() - began >= 1.9 and record["status"] == "settled"
    fac.control(settle="ok")
    assert settle(fac, body)[1]["errorReason"] == "invalid_exact_evm_nonce_already_used"


def test_verify_failure_modes(fac):
    body, account = pay(2)
    fac.control(verify="invalid")
    response, answer = verify(fac, body)
    assert (response.status_code, answer["isValid"], answer["invalidReason"], answer["payer"]) == \
        (200, False, "insufficient_funds", account.address)
    fac.control(verify_reason="unexpected_verify_error")
    assert verify(fac, body)[1]["invalidReason"] == "unexpected_verify_error"
    # A payment that is wrong anyway keeps its own reason.
    wrong = copy.deepcopy(body)
    wrong["paymentRequirements"]["payTo"] = OTHER
    assert verify(fac, wrong)[1]["invalidReason"] == "invalid_exact_evm_payload_recipient_mismatch"

    fac.control(verify="5xx", error_status=502)
    response = fac.post("/verify", body)
    assert response.status_code == 502 and response.json()["error"]
    fac.control(verify="garbage")
    response = fac.post("/verify", body)
    assert response.status_code == 200 and not response.headers["Content-Type"].startswith("application/json")
    fac.control(verify="timeout", timeout_s=1.5)
    with pytest.raises(requests.exceptions.Timeout):
        fac.post("/verify", body, timeout=0.3)
    fac.control(verify="ok")
    assert verify(fac, body)[1]["isValid"] is True
    assert fac.settlements() == []


def test_delay_and_reject_status(fac):
    body, _ = pay(2)
    fac.control(delay_ms=400)
    began = time.monotonic()
    assert verify(fac, body)[1]["isValid"] is True
    assert time.monotonic() - began >= 0.4
    fac.control(delay_ms=0, reject_status=412)
    wrong = copy.deepcopy(body)
    wrong["paymentRequirements"]["amount"] = "1"
    response, answer = verify(fac, wrong)
    assert response.status_code == 412 and answer["invalidReason"] == "invalid_exact_evm_payload_authorization_value_mismatch"
    response, answer = settle(fac, wrong)
    assert response.status_code == 412 and answer["success"] is False
    response, answer = settle(fac, body)
    assert response.status_code == 200 and answer["success"] is True


def test_supported_failure_modes(fac):
    fac.control(supported="5xx")
    assert fac.get("/supported").status_code == 503
    fac.control(supported="garbage")
    response = fac.get("/supported")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    fac.control(supported="timeout", timeout_s=1)
    with pytest.raises(requests.exceptions.Timeout):
        fac.get("/supported", timeout=0.3)


def test_control_refuses_bad_settings_and_applies_none_of_them(fac):
    before = fac.get("/_control").json()["control"]
    for bad in ({"settle": "explode"}, {"verify": "pending"}, {"delay_ms": -1}, {"delay_ms": "5"},
                {"timeout_s": "long"}, {"reject_status": 500}, {"error_status": 404}, {"bogus": 1},
                {"settle": "fail", "verify": "nope"}, [], "ok"):
        response = fac.post("/_control", bad)
        assert response.status_code == 400 and response.json()["error"], bad
    assert fac.post("/_control", raw=b"{").status_code == 400
    assert fac.get("/_control").json()["control"] == before


def test_flags_set_the_startup_modes_and_reset_restores_them(start):
    f = start("--settle", "pending", "--verify", "invalid", "--verify-reason", "insufficient_funds",
              "--delay-ms", "1", "--timeout-s", "5")
    control = f.get("/_control").json()["control"]
    assert (control["settle"], control["verify"], control["delay_ms"], control["timeout_s"]) == ("pending", "invalid", 1, 5.0)
    body, _ = pay(2)
    assert verify(f, body)[1]["invalidReason"] == "insufficient_funds"
    assert settle(f, body)[1]["errorReason"] == "settlement_pending"
    f.control(settle="ok", verify="ok")
    assert len(f.settlements()) == 1
    answer = f.post("/_reset", {}).json()
    assert answer["control"]["settle"] == "pending" and answer["control"]["verify"] == "invalid"
    assert f.settlements() == []
    f.control(settle="ok")
    assert settle(f, body)[1]["success"] is True  # forgotten by the reset


# -- auth and the ledger ----------------------------------------------------------------------


def test_bearer_auth(start):
    f = start("--require-auth", "s3cret")
    for path in ("/supported", "/_settlements", "/_control"):
        response = f.get(path)
        assert response.status_code == 401 and response.json()["error"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert f.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert f.get(path, headers={"Authorization": "Basic s3cret"}).status_code == 401
        assert f.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    body, _ = pay(2)
    assert f.post("/verify", body).status_code == 401
    assert f.post("/settle", body).status_code == 401
    assert f.post("/_reset", {}).status_code == 401
    assert f.get("/healthz").status_code == 200
    auth = {"Authorization": "Bearer s3cret"}
    client = HTTPFacilitatorClientSync({"url": f.url, "create_headers": lambda: {
        "verify": auth, "settle": auth, "supported": auth}})
    assert len(client.get_supported().kinds) == 2
    payload = decode_payment_signature_header(base64.b64encode(json.dumps(body["paymentPayload"]).encode()).decode())
    requirements = PaymentRequirements.model_validate(body["paymentRequirements"])
    assert client.verify(payload, requirements).is_valid
    assert client.settle(payload, requirements).success


def test_the_ledger_survives_a_restart_and_a_reset(start, tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    f = start("--ledger", str(ledger))
    body, account = pay(2)
    pending_body, _ = pay(1)
    settled = settle(f, body)[1]
    f.control(settle="pending")
    settle(f, pending_body)
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [(r["type"], r["status"]) for r in lines] == [("settlement", "settled"), ("settlement", "pending")]
    assert lines[0]["amount"] == "10000" and lines[0]["payer"] == account.address

    f.process.kill()
    with ledger.open("a") as file:
        file.write('{"type": "settlement", "truncat')  # a crash mid-write
    f.start()
    assert [r["transaction"] for r in f.settlements()][0] == settled["transaction"]
    assert len(f.settlements()) == 2
    assert settle(f, body)[1]["errorReason"] == "invalid_exact_evm_nonce_already_used"
    assert verify(f, pending_body)[1]["invalidReason"] == "invalid_exact_evm_nonce_already_used"
    assert "unreadable line skipped" in f.process.log_tail()

    # The facilitator ended the broken line, so what it appends next stays readable.
    assert ledger.read_text().endswith("\n")
    assert f.post("/_reset", {}).status_code == 200
    f.process.kill()
    f.start()
    assert f.settlements() == []
    assert settle(f, body)[1]["success"] is True


def test_stats_count_its_own_time_per_route_and_not_a_kept_alive_connection_idling(start):
    """`GET /_stats` is what bench-payments subtracts: the facilitator's own time on a route, from
    a request's first byte to its answer's last, with an injected delay in it and idle time not."""
    f = start()
    body, _ = pay(2)
    session = requests.Session()
    post = lambda path: session.post(f"{f.url}{path}", data=json.dumps(body), timeout=10,  # noqa: E731
                                     headers={"Content-Type": "application/json"})
    assert post("/verify").json()["isValid"] is True
    time.sleep(0.5)  # the kept-alive connection idles: not the facilitator's time
    assert post("/verify").json()["isValid"] is True
    stats = f.get("/_stats").json()
    assert stats["requests"]["/verify"] == 2
    assert 0 < stats["busy_ns"]["/verify"] < 0.4e9, stats
    f.control(delay_ms=300)
    assert post("/settle").json()["success"] is True
    stats = f.get("/_stats").json()
    assert stats["requests"]["/settle"] == 1
    assert stats["busy_ns"]["/settle"] >= 0.3e9, stats
