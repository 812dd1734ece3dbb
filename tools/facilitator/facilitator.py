#!/usr/bin/env python3
"""Tollgate's local x402 facilitator, for tests and the quickstart. It touches no chain.

    python3 tools/facilitator/facilitator.py --listen 127.0.0.1:7403 [--ledger PATH]

It answers `POST /verify`, `POST /settle` and `GET /supported` as an x402 facilitator does (v1 and
v2 payloads, `exact` scheme, EVM networks), and checks each payment for real, offline: the EIP-712
`TransferWithAuthorization` signature (EIP-3009) is recovered with eth-account under the token's
domain (name and version from `extra`, chainId from the network, verifyingContract = asset) and must
come from `authorization.from`; `to` must be `payTo`, `value` the required amount, the time bounds
must hold, the scheme, network and asset must match the requirements, and a nonce is settled once.

What it cannot know without a chain, it does not pretend to: balances are not checked, on-chain
nonce state is not consulted, smart-wallet signatures (EIP-1271, ERC-6492) are refused, and a
settlement is a line in memory (and in the optional JSON-lines ledger) with a made-up transaction
hash. It says so in `/supported`, in its startup line, in every verify and settle answer (`extra`)
and in the `X-Tollgate-Facilitator` header of every answer.

For tests it can be told to misbehave, at start (flags) or at run time (`POST /_control`), and it
lists what it settled (`GET /_settlements`) and forgets it (`POST /_reset`). See README.md.

Needs only the standard library plus `eth-account` and the official `x402` SDK (`pip install
"x402[evm,httpx]" eth-account`, as in tests/system/requirements.txt). Money is integer atomic units.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

try:
    from eth_account import Account
    from eth_account.messages import encode_typed_data
    from eth_utils import to_checksum_address
    from x402.mechanisms.evm.v1.constants import V1_NETWORK_CHAIN_IDS
except ImportError as error:  # pragma: no cover - a setup problem, said plainly
    sys.stderr.write(
        f"facilitator: missing Python package ({error}). Install them with\n"
        "  python3 -m venv .venv && .venv/bin/pip install -r tests/system/requirements.txt\n"
        "and run this with .venv/bin/python.\n")
    sys.exit(2)

OFFLINE_NOTE = (
    "Tollgate local test facilitator: it touches no chain. Signatures, recipients, amounts, time "
    "bounds and nonces are checked offline; balances and on-chain state are not; settlements are "
    "recorded locally with made-up transaction hashes and move no money.")
OFFLINE_EXTRA = {"chain": "none", "note": OFFLINE_NOTE}
OFFLINE_HEADER = ("X-Tollgate-Facilitator", "local; chain=none; no money moves")

# Error codes: the x402 specification's registry (see ../shared/x402.md), plus the two the SDK and
# the issue use for a nonce already spent and a settlement broadcast but not confirmed.
INSUFFICIENT_FUNDS = "insufficient_funds"
INVALID_SIGNATURE = "invalid_exact_evm_payload_signature"
RECIPIENT_MISMATCH = "invalid_exact_evm_payload_recipient_mismatch"
VALUE_MISMATCH = "invalid_exact_evm_payload_authorization_value_mismatch"
VALID_AFTER = "invalid_exact_evm_payload_authorization_valid_after"
VALID_BEFORE = "invalid_exact_evm_payload_authorization_valid_before"
NONCE_ALREADY_USED = "invalid_exact_evm_nonce_already_used"
INVALID_NETWORK = "invalid_network"
INVALID_PAYLOAD = "invalid_payload"
INVALID_REQUIREMENTS = "invalid_payment_requirements"
UNSUPPORTED_SCHEME = "unsupported_scheme"
INVALID_VERSION = "invalid_x402_version"
INVALID_TRANSACTION_STATE = "invalid_transaction_state"
UNEXPECTED_VERIFY_ERROR = "unexpected_verify_error"
UNEXPECTED_SETTLE_ERROR = "unexpected_settle_error"
SETTLEMENT_PENDING = "settlement_pending"

SCHEME = "exact"
UINT256_LIMIT = 1 << 256
SECP256K1_HALF_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2
MAX_BODY = 1 << 20

_ADDRESS = re.compile(r"^0[xX][0-9a-fA-F]{40}$")
_DECIMAL = re.compile(r"^[0-9]+$")
_HEX = re.compile(r"^0[xX][0-9a-fA-F]+$")
_SIGNATURE = re.compile(r"^0[xX](?:[0-9a-fA-F]{2})+$")

_EIP712_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


# ---------------------------------------------------------------------------------------------
# Networks


@dataclass(frozen=True)
class Network:
    chain_id: int
    caip2: str            # eip155:<chain id>, the v2 name
    v1_name: str | None   # the v1 name the SDK knows for this chain, if any


def parse_network(text: str) -> Network:
    """`eip155:84532` or a v1 name (`base-sepolia`) -> the network, with both of its names."""
    text = text.strip()
    if text.startswith("eip155:") and text[7:].isdigit() and not text[7:].startswith("0"):
        chain = int(text[7:])
    elif text in V1_NETWORK_CHAIN_IDS:
        chain = V1_NETWORK_CHAIN_IDS[text]
    else:
        raise ValueError(f"unknown network {text!r}: give eip155:<chain id> or one of the SDK's v1 names")
    names = sorted(name for name, cid in V1_NETWORK_CHAIN_IDS.items() if cid == chain)
    return Network(chain, f"eip155:{chain}", names[0] if names else None)


# ---------------------------------------------------------------------------------------------
# Failure injection


SETTLE_MODES = ("ok", "fail", "timeout", "garbage", "pending", "5xx")
VERIFY_MODES = ("ok", "invalid", "timeout", "garbage", "5xx")
SUPPORTED_MODES = ("ok", "timeout", "garbage", "5xx")


@dataclass(frozen=True)
class Control:
    """How the facilitator behaves; set by flags at start and by `POST /_control` at run time."""
    settle: str = "ok"
    verify: str = "ok"
    supported: str = "ok"
    delay_ms: int = 0                       # added before every /verify and /settle answer
    timeout_s: float = 30.0                 # how long "timeout" sleeps before answering
    settle_reason: str = UNEXPECTED_SETTLE_ERROR   # errorReason of settle "fail"
    verify_reason: str = INSUFFICIENT_FUNDS        # invalidReason of verify "invalid"
    reject_status: int = 200                # HTTP status of isValid:false / success:false answers
    error_status: int = 503                 # HTTP status of "5xx"

    def updated(self, changes: Any) -> "Control":
        """A copy with `changes` applied; ValueError names what is wrong, and nothing is applied."""
        if not isinstance(changes, dict):
            raise ValueError("the control body must be a JSON object")
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown control keys {unknown}; known: {sorted(known)}")
        checked: dict[str, Any] = {}
        for key, value in changes.items():
            if key in ("settle", "verify", "supported"):
                allowed = {"settle": SETTLE_MODES, "verify": VERIFY_MODES, "supported": SUPPORTED_MODES}[key]
                if value not in allowed:
                    raise ValueError(f"{key} must be one of {list(allowed)}, got {value!r}")
            elif key == "delay_ms":
                if type(value) is not int or value < 0:
                    raise ValueError(f"delay_ms must be a non-negative integer, got {value!r}")
            elif key == "timeout_s":
                if type(value) not in (int, float) or not 0 <= value <= 3600:
                    raise ValueError(f"timeout_s must be a number of seconds in [0, 3600], got {value!r}")
                value = float(value)
            elif key in ("settle_reason", "verify_reason"):
                if not isinstance(value, str) or not value:
                    raise ValueError(f"{key} must be a non-empty string, got {value!r}")
            elif key == "reject_status":
                if type(value) is not int or not 200 <= value <= 499:
                    raise ValueError(f"reject_status must be an HTTP status in [200, 499], got {value!r}")
            elif key == "error_status":
                if type(value) is not int or not 500 <= value <= 599:
                    raise ValueError(f"error_status must be an HTTP status in [500, 599], got {value!r}")
            checked[key] = value
        return replace(self, **checked)


# ---------------------------------------------------------------------------------------------
# Checking a payment


class Refusal(Exception):
    """A payment the facilitator will not verify or settle, with its x402 reason."""

    def __init__(self, reason: str, message: str, status: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status  # None: the configured reject_status; 400 for a malformed request


@dataclass(frozen=True)
class Payment:
    """A payment that passed every offline check."""
    x402_version: int
    network: str          # as the requirements name it (v1 name or CAIP-2)
    chain_id: int
    asset: str            # checksummed
    payer: str            # checksummed authorization.from, the recovered signer
    pay_to: str           # checksummed
    value: int
    valid_after: int
    valid_before: int
    nonce: str            # 0x + 64 lowercase hex

    @property
    def nonce_key(self) -> str:
        # EIP-3009 nonces are single-use per token contract and authorizer.
        return f"{self.chain_id}:{self.asset.lower()}:{self.payer.lower()}:{self.nonce}"

    @property
    def transaction(self) -> str:
        """Made-up, deterministic from the nonce: 0x + 64 hex. No such transaction exists."""
        seed = f"tollgate-local-facilitator|{self.nonce_key}".encode()
        return "0x" + hashlib.sha256(seed).hexdigest()


def _uint(value: Any, what: str, reason: str) -> int:
    """A uint256 sent as a JSON string: decimal digits, or 0x-hex as the exact EVM scheme allows."""
    if not isinstance(value, str):
        raise Refusal(reason, f"{what} must be a string of digits, got {type(value).__name__} {value!r}")
    if _DECIMAL.match(value):
        number = int(value, 10)
    elif _HEX.match(value):
        number = int(value, 16)
    else:
        raise Refusal(reason, f"{what} is not an unsigned integer: {value!r}")
    if number >= UINT256_LIMIT:
        raise Refusal(reason, f"{what} does not fit in 256 bits")
    return number


def _address(value: Any, what: str, reason: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise Refusal(reason, f"{what} is not a 20-byte 0x-hex address: {value!r}")
    return to_checksum_address("0x" + value[2:].lower())


def _nonce(value: Any) -> str:
    if not isinstance(value, str):
        raise Refusal(INVALID_PAYLOAD, f"authorization.nonce must be a string, got {value!r}")
    if _HEX.match(value) and len(value) <= 66:
        number = int(value, 16)
    elif _DECIMAL.match(value):
        number = int(value, 10)
    else:
        raise Refusal(INVALID_PAYLOAD, f"authorization.nonce is not a 32-byte value: {value!r}")
    if number >= UINT256_LIMIT:
        raise Refusal(INVALID_PAYLOAD, "authorization.nonce does not fit in 32 bytes")
    return "0x" + number.to_bytes(32, "big").hex()


def _payer_hint(payment_payload: Any) -> str | None:
    """authorization.from when it reads as an address, to name the payer in a refusal."""
    try:
        value = payment_payload["payload"]["authorization"]["from"]
        return _address(value, "from", INVALID_PAYLOAD)
    except (Refusal, KeyError, TypeError):
        return None


def recover_signer(payment_chain_id: int, asset: str, extra_name: str, extra_version: str,
                   authorization: dict[str, Any], signature: bytes) -> str:
    """The address that signed this TransferWithAuthorization under the token's EIP-712 domain."""
    typed = {
        "types": _EIP712_TYPES,
        "primaryType": "TransferWithAuthorization",
        "domain": {"name": extra_name, "version": extra_version, "chainId": payment_chain_id,
                   "verifyingContract": asset},
        "message": authorization,
    }
    return Account.recover_message(encode_typed_data(full_message=typed), signature=signature)


class Checker:
    def __init__(self, networks: list[Network], expiry_margin_s: int, clock=time.time, check_signatures: bool = True):
        self.networks = networks
        self.expiry_margin_s = expiry_margin_s
        self.check_signatures = check_signatures
        self.clock = clock
        self.by_v2 = {n.caip2: n for n in networks}
        self.by_v1 = {n.v1_name: n for n in networks if n.v1_name}

    def check(self, body: Any) -> Payment:
        """Every offline check, in order; raises Refusal with the x402 reason of the first failure."""
        if not isinstance(body, dict):
            raise Refusal(INVALID_PAYLOAD, "the request body must be a JSON object", 400)
        payload = body.get("paymentPayload")
        requirements = body.get("paymentRequirements")
        if not isinstance(payload, dict):
            raise Refusal(INVALID_PAYLOAD, "paymentPayload is missing or not an object", 400)
        if not isinstance(requirements, dict):
            raise Refusal(INVALID_REQUIREMENTS, "paymentRequirements is missing or not an object", 400)

        # Version: the payload's, and the request's when it names one (they must agree).
        version = payload.get("x402Version")
        if type(version) is not int or version not in (1, 2):
            raise Refusal(INVALID_VERSION, f"paymentPayload.x402Version must be 1 or 2, got {version!r}")
        outer = body.get("x402Version", version)
        if type(outer) is not int or outer != version:
            raise Refusal(INVALID_VERSION, f"x402Version {outer!r} differs from paymentPayload.x402Version {version}")

        # The server's requirements.
        amount_key = "amount" if version == 2 else "maxAmountRequired"
        scheme = requirements.get("scheme")
        if scheme != SCHEME:
            raise Refusal(UNSUPPORTED_SCHEME, f"this facilitator supports the exact scheme only, not {scheme!r}")
        network_name = requirements.get("network")
        if not isinstance(network_name, str):
            raise Refusal(INVALID_REQUIREMENTS, "paymentRequirements.network must be a string")
        amount_text = requirements.get(amount_key)
        if not isinstance(amount_text, str) or not _DECIMAL.match(amount_text):
            raise Refusal(INVALID_REQUIREMENTS,
                          f"paymentRequirements.{amount_key} must be a string of decimal digits, got {amount_text!r}")
        amount = int(amount_text)
        if amount >= UINT256_LIMIT:
            raise Refusal(INVALID_REQUIREMENTS, f"paymentRequirements.{amount_key} does not fit in 256 bits")
        asset = _address(requirements.get("asset"), "paymentRequirements.asset", INVALID_REQUIREMENTS)
        pay_to = _address(requirements.get("payTo"), "paymentRequirements.payTo", INVALID_REQUIREMENTS)
        extra = requirements.get("extra")
        if not isinstance(extra, dict) or not all(isinstance(extra.get(k), str) and extra.get(k) for k in ("name", "version")):
            raise Refusal(INVALID_REQUIREMENTS,
                          "paymentRequirements.extra must carry the token's EIP-712 domain: {name, version}")
        network = (self.by_v2 if version == 2 else self.by_v1).get(network_name)
        if network is None:
            known = sorted(self.by_v2 if version == 2 else self.by_v1)
            raise Refusal(INVALID_NETWORK, f"network {network_name!r} is not supported for x402 v{version} here (supported: {known})")

        # What the payment says it pays for.
        if version == 2:
            accepted = payload.get("accepted")
            if not isinstance(accepted, dict):
                raise Refusal(INVALID_PAYLOAD, "paymentPayload.accepted is missing or not an object")
            paid_scheme, paid_network, paid_asset = accepted.get("scheme"), accepted.get("network"), accepted.get("asset")
        else:
            paid_scheme, paid_network, paid_asset = payload.get("scheme"), payload.get("network"), None
        if paid_scheme != SCHEME:
            raise Refusal(UNSUPPORTED_SCHEME, f"the payment's scheme is {paid_scheme!r}, not exact")
        if paid_network != network_name:
            raise Refusal(INVALID_NETWORK, f"the payment is for network {paid_network!r}, the requirements ask for {network_name!r}")
        if paid_asset is not None and (not isinstance(paid_asset, str) or paid_asset.lower() != asset.lower()):
            # v2 names the asset; v1 does not, and there the signature check below catches it (the
            # asset is the EIP-712 verifyingContract). Either way the token contract would refuse
            # the authorization as wrongly signed, hence this reason.
            raise Refusal(INVALID_SIGNATURE, f"the payment was signed for asset {paid_asset!r}, the requirements ask for {asset}")

        # The signed authorization.
        inner = payload.get("payload")
        if not isinstance(inner, dict):
            raise Refusal(INVALID_PAYLOAD, "paymentPayload.payload is missing or not an object")
        authorization = inner.get("authorization")
        signature_text = inner.get("signature")
        if not isinstance(authorization, dict):
            raise Refusal(INVALID_PAYLOAD, "payload.authorization is missing or not an object")
        if not isinstance(signature_text, str) or not _SIGNATURE.match(signature_text):
            raise Refusal(INVALID_PAYLOAD, "payload.signature is missing or not 0x-hex bytes")
        payer = _address(authorization.get("from"), "authorization.from", INVALID_PAYLOAD)
        to = _address(authorization.get("to"), "authorization.to", INVALID_PAYLOAD)
        value = _uint(authorization.get("value"), "authorization.value", INVALID_PAYLOAD)
        valid_after = _uint(authorization.get("validAfter"), "authorization.validAfter", INVALID_PAYLOAD)
        valid_before = _uint(authorization.get("validBefore"), "authorization.validBefore", INVALID_PAYLOAD)
        nonce = _nonce(authorization.get("nonce"))

        if to != pay_to:
            raise Refusal(RECIPIENT_MISMATCH, f"the authorization pays {to}, the requirements ask for payTo {pay_to}")
        if value != amount:
            raise Refusal(VALUE_MISMATCH, f"the authorization is for {value} atomic units, the requirements ask for exactly {amount}")
        now = int(self.clock())
        if valid_before <= now + self.expiry_margin_s:
            raise Refusal(VALID_BEFORE, f"the authorization expires at {valid_before}; now is {now} "
                                        f"(and settling needs {self.expiry_margin_s} s)")
        if valid_after > now:
            raise Refusal(VALID_AFTER, f"the authorization is valid only after {valid_after}; now is {now}")

        signature = bytes.fromhex(signature_text[2:])
        if len(signature) != 65:
            raise Refusal(INVALID_SIGNATURE, f"the signature is {len(signature)} bytes; only 65-byte EOA signatures "
                                             "can be checked offline (no EIP-1271 / ERC-6492 without a chain)")
        r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
        if v not in (27, 28) or r == 0 or s == 0 or s > SECP256K1_HALF_N:
            raise Refusal(INVALID_SIGNATURE, "the signature is malformed (v must be 27 or 28, s in the lower half)")
        message = {"from": payer, "to": to, "value": value, "validAfter": valid_after,
                   "validBefore": valid_before, "nonce": bytes.fromhex(nonce[2:])}
        try:
            # --no-signature-check (benchmarks only): the signer is taken to be authorization.from.
            signer = (recover_signer(network.chain_id, asset, extra["name"], extra["version"], message, signature)
                      if self.check_signatures else payer)
        except Exception as error:  # noqa: BLE001 - any failure to recover is a bad signature
            raise Refusal(INVALID_SIGNATURE, f"no signer could be recovered: {error}") from error
        if signer.lower() != payer.lower():
            raise Refusal(INVALID_SIGNATURE,
                          f"the signature recovers to {signer}, not to authorization.from {payer}, under the domain "
                          f"name={extra['name']!r} version={extra['version']!r} chainId={network.chain_id} "
                          f"verifyingContract={asset}")
        return Payment(version, network_name, network.chain_id, asset, payer, pay_to, value, valid_after,
                       valid_before, nonce)


# ---------------------------------------------------------------------------------------------
# State: spent nonces and settlements, in memory and optionally in a JSON-lines ledger


class Ledger:
    def __init__(self, path: str | None):
        self.path = path
        self.lock = threading.Lock()
        self.used: dict[str, dict[str, Any]] = {}   # nonce key -> settlement record
        self.settlements: list[dict[str, Any]] = []
        self.loaded = 0
        if path and os.path.exists(path):
            self._load()

    def _load(self):
        with open(self.path, encoding="utf-8") as file:
            for number, line in enumerate(file, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    log(f"ledger {self.path}:{number}: unreadable line skipped")
                    continue
                if record.get("type") == "reset":
                    self.used.clear()
                    self.settlements.clear()
                elif record.get("type") == "settlement" and isinstance(record.get("nonceKey"), str):
                    self.used[record["nonceKey"]] = record
                    self.settlements.append(record)
        self.loaded = len(self.settlements)
        # A crash mid-write leaves a last line without its newline; end it, or the next record
        # would be glued to it and lost too.
        with open(self.path, "rb+") as file:
            file.seek(0, os.SEEK_END)
            if file.tell() > 0:
                file.seek(-1, os.SEEK_END)
                if file.read(1) != b"\n":
                    file.write(b"\n")

    def _append(self, record: dict[str, Any]):
        if self.path:
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(json.dumps(record, sort_keys=True) + "\n")
                file.flush()
                os.fsync(file.fileno())

    def spent(self, payment: Payment) -> dict[str, Any] | None:
        with self.lock:
            return self.used.get(payment.nonce_key)

    def claim(self, payment: Payment, status: str) -> dict[str, Any] | None:
        """Records the settlement unless the nonce is spent; returns the earlier record if it is."""
        with self.lock:
            earlier = self.used.get(payment.nonce_key)
            if earlier is not None:
                return earlier
            record = {
                "type": "settlement", "status": status, "transaction": payment.transaction,
                "network": payment.network, "chainId": payment.chain_id, "asset": payment.asset,
                "payer": payment.payer, "payTo": payment.pay_to, "amount": str(payment.value),
                "nonce": payment.nonce, "nonceKey": payment.nonce_key, "validAfter": str(payment.valid_after),
                "validBefore": str(payment.valid_before), "x402Version": payment.x402_version,
                "time": time.time(), "chain": "none",
            }
            self._append(record)
            self.used[payment.nonce_key] = record
            self.settlements.append(record)
            return None

    def reset(self):
        with self.lock:
            self.used.clear()
            self.settlements.clear()
            self._append({"type": "reset", "time": time.time()})

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.settlements]


# ---------------------------------------------------------------------------------------------
# HTTP


def log(message: str):
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} facilitator: {message}\n")
    sys.stderr.flush()


class Facilitator:
    def __init__(self, networks: list[Network], control: Control, ledger: Ledger, token: str | None,
                 expiry_margin_s: int, check_signatures: bool = True):
        self.networks = networks
        self.initial_control = control
        self.control = control
        self.control_lock = threading.Lock()
        self.ledger = ledger
        self.token = token
        self.checker = Checker(networks, expiry_margin_s, check_signatures=check_signatures)
        # Its own time per route: from a request's first byte here to the last byte of its answer
        # written (parsing, checking, answering), so a benchmark can leave out exactly that.
        self.stats_lock = threading.Lock()
        self.busy_ns: dict[str, int] = {}
        self.requests: dict[str, int] = {}

    def record(self, path: str, busy_ns: int):
        with self.stats_lock:
            self.busy_ns[path] = self.busy_ns.get(path, 0) + busy_ns
            self.requests[path] = self.requests.get(path, 0) + 1

    def stats(self) -> dict[str, Any]:
        with self.stats_lock:
            return {"busy_ns": dict(self.busy_ns), "requests": dict(self.requests)}

    def current(self) -> Control:
        with self.control_lock:
            return self.control

    def set_control(self, changes: Any) -> Control:
        with self.control_lock:
            self.control = self.control.updated(changes)
            return self.control

    def supported(self) -> dict[str, Any]:
        kinds = []
        for network in self.networks:
            kinds.append({"x402Version": 2, "scheme": SCHEME, "network": network.caip2})
        for network in self.networks:
            if network.v1_name:
                kinds.append({"x402Version": 1, "scheme": SCHEME, "network": network.v1_name})
        return {"kinds": kinds, "extensions": [], "signers": {}, "extra": OFFLINE_EXTRA}


class BodyTooLarge(ValueError):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TollgateLocalFacilitator/1"
    # Headers and body go out in separate writes: with Nagle on, the body waited for the client's
    # delayed ACK (about 40 ms per answer on a kept-alive connection).
    disable_nagle_algorithm = True
    facilitator: Facilitator  # set on the subclass made in serve()

    # -- plumbing ------------------------------------------------------------------------------
    def handle_one_request(self):
        # The clock starts when the next request's first bytes are here, not while a kept-alive
        # connection idles between requests.
        try:
            self.rfile.peek(1)
        except OSError:
            pass
        start = time.perf_counter_ns()
        self._timed_path = None
        super().handle_one_request()
        if self._timed_path is not None:
            self.facilitator.record(self._timed_path, time.perf_counter_ns() - start)

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        log(f"{self.address_string()} {format % args}")

    def _send(self, status: int, body: bytes, content_type: str = "application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header(*OFFLINE_HEADER)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="tollgate-local-facilitator"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any):
        self._send(status, json.dumps(value, separators=(",", ":")).encode())

    def _read_body(self) -> bytes:
        """The request body (Content-Length or chunked); ValueError if it is too large or broken."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise BodyTooLarge()
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_BODY:
            raise BodyTooLarge()
        return self.rfile.read(length) if length else b""

    def _authorised(self) -> bool:
        token = self.facilitator.token
        if token is None:
            return True
        given = self.headers.get("Authorization") or ""
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())

    # -- dispatch ------------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str):
        path = urlsplit(self.path).path
        routes = {
            "/healthz": ("GET", self._healthz, False),
            "/supported": ("GET", self._supported, True),
            "/verify": ("POST", self._verify, True),
            "/settle": ("POST", self._settle, True),
            "/_control": ("POST", self._control, True),
            "/_settlements": ("GET", self._settlements, True),
            "/_reset": ("POST", self._reset, True),
            "/_stats": ("GET", self._stats, True),
        }
        self._timed_path = path if path in routes else None
        try:
            raw = self._read_body()
        except BodyTooLarge:
            self.close_connection = True
            self._json(413, {"error": f"the request body is larger than {MAX_BODY} bytes"})
            return
        except (ValueError, OSError):
            self.close_connection = True
            self._json(400, {"error": "the request body could not be read (bad Content-Length or chunking)"})
            return
        route = routes.get(path)
        if route is None:
            self._json(404, {"error": f"no route {path}", "routes": sorted(routes)})
            return
        wanted, handler, needs_auth = route
        if method == "HEAD" and wanted == "GET":
            method = "GET"
        if path == "/_control" and method == "GET":
            handler, wanted = self._show_control, "GET"
        if method != wanted:
            self._json(405, {"error": f"{path} takes {wanted}, not {method}"})
            return
        if needs_auth and not self._authorised():
            self._json(401, {"error": "unauthorized: send Authorization: Bearer <token>"})
            return
        try:
            handler(raw)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # noqa: BLE001 - never die on a request; answer JSON
            log(f"unexpected error on {path}: {error!r}")
            self._json(500, {"error": f"unexpected error: {error}"})

    @staticmethod
    def _parse(raw: bytes) -> tuple[Any, str | None]:
        try:
            return json.loads(raw.decode("utf-8")), None
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            return None, f"the request body is not JSON: {error!s:.200}"

    # -- the facilitator API -------------------------------------------------------------------
    def _stats(self, _raw: bytes):
        self._json(200, self.facilitator.stats())

    def _healthz(self, _raw: bytes):
        self._json(200, {"ok": True, "chain": "none"})

    def _supported(self, _raw: bytes):
        control = self.facilitator.current()
        if self._misbehave(control.supported, control):
            return
        self._json(200, self.facilitator.supported())

    def _misbehave(self, mode: str, control: Control) -> bool:
        """Carries out an injected failure; True when the answer has been sent. "timeout" sleeps and
        then lets the request be answered as in "ok" mode (as with a real chain, a timeout on the
        client's side says nothing about whether the work was done)."""
        if mode == "timeout":
            time.sleep(control.timeout_s)
            return False
        if mode == "5xx":
            self._json(control.error_status, {"error": "injected failure: 5xx", "chain": "none"})
            return True
        if mode == "garbage":
            self._send(200, b"<html><body>502 Bad Gateway (injected garbage, not JSON)</body></html>",
                       "text/html")
            return True
        return False

    def _verify(self, raw: bytes):
        control = self.facilitator.current()
        body, error = self._parse(raw)
        if control.delay_ms:
            time.sleep(control.delay_ms / 1000)
        if self._misbehave(control.verify, control):
            return
        if error:
            self._json(400, {"isValid": False, "invalidReason": INVALID_PAYLOAD, "invalidMessage": error,
                             "extra": OFFLINE_EXTRA})
            return
        payer = _payer_hint(body.get("paymentPayload")) if isinstance(body, dict) else None
        try:
            payment = self.facilitator.checker.check(body)
        except Refusal as refusal:
            self._verify_refused(control, refusal.reason, refusal.message, payer, refusal.status)
            return
        earlier = self.facilitator.ledger.spent(payment)
        if earlier is not None:
            self._verify_refused(control, NONCE_ALREADY_USED,
                                 f"this nonce was already settled ({earlier['status']}, {earlier['transaction']})",
                                 payment.payer)
            return
        if control.verify == "invalid":
            self._verify_refused(control, control.verify_reason, "injected failure: verify invalid", payment.payer)
            return
        self._json(200, {"isValid": True, "payer": payment.payer, "extra": OFFLINE_EXTRA})

    def _verify_refused(self, control: Control, reason: str, message: str, payer: str | None, status: int | None = None):
        answer = {"isValid": False, "invalidReason": reason, "invalidMessage": message, "extra": OFFLINE_EXTRA}
        if payer:
            answer["payer"] = payer
        self._json(status or control.reject_status, answer)

    def _settle(self, raw: bytes):
        control = self.facilitator.current()
        body, error = self._parse(raw)
        if control.delay_ms:
            time.sleep(control.delay_ms / 1000)
        if self._misbehave(control.settle, control):
            return
        network = ""
        if isinstance(body, dict) and isinstance(body.get("paymentRequirements"), dict):
            candidate = body["paymentRequirements"].get("network")
            network = candidate if isinstance(candidate, str) else ""
        if error:
            self._settle_refused(control, INVALID_PAYLOAD, error, None, network, status=400)
            return
        payer = _payer_hint(body.get("paymentPayload")) if isinstance(body, dict) else None
        try:
            payment = self.facilitator.checker.check(body)
        except Refusal as refusal:
            self._settle_refused(control, refusal.reason, refusal.message, payer, network, status=refusal.status)
            return
        if control.settle == "fail":
            # Nothing is recorded: the nonce stays unspent, as after a reverted transaction.
            self._settle_refused(control, control.settle_reason, "injected failure: settle fail", payment.payer,
                                 payment.network)
            return
        status = "pending" if control.settle == "pending" else "settled"
        earlier = self.facilitator.ledger.claim(payment, status)
        if earlier is not None:
            self._settle_refused(control, NONCE_ALREADY_USED,
                                 f"this nonce was already settled ({earlier['status']}, {earlier['transaction']})",
                                 payment.payer, payment.network)
            return
        if status == "pending":
            # Broadcast, not confirmed: not a success. The nonce counts as spent from here on.
            log(f"settlement PENDING (made up, no chain) {payment.transaction} {payment.value} from {payment.payer}")
            self._json(control.reject_status, {
                "success": False, "errorReason": SETTLEMENT_PENDING,
                "errorMessage": "injected: the transaction was broadcast but is not confirmed",
                "payer": payment.payer, "transaction": payment.transaction, "network": payment.network,
                "amount": str(payment.value), "extra": OFFLINE_EXTRA})
            return
        log(f"settled (made up, no chain) {payment.transaction} {payment.value} of {payment.asset} "
            f"on {payment.network} from {payment.payer} to {payment.pay_to}")
        self._json(200, {"success": True, "payer": payment.payer, "transaction": payment.transaction,
                         "network": payment.network, "amount": str(payment.value), "extra": OFFLINE_EXTRA})

    def _settle_refused(self, control: Control, reason: str, message: str, payer: str | None, network: str,
                        status: int | None = None):
        answer = {"success": False, "errorReason": reason, "errorMessage": message, "transaction": "",
                  "network": network, "extra": OFFLINE_EXTRA}
        if payer:
            answer["payer"] = payer
        self._json(status or control.reject_status, answer)

    # -- test control --------------------------------------------------------------------------
    def _show_control(self, _raw: bytes):
        self._json(200, {"control": asdict(self.facilitator.current())})

    def _control(self, raw: bytes):
        changes, error = self._parse(raw)
        if error:
            self._json(400, {"error": error})
            return
        try:
            control = self.facilitator.set_control(changes)
        except ValueError as problem:
            self._json(400, {"error": str(problem)})
            return
        log(f"control now {asdict(control)}")
        self._json(200, {"control": asdict(control)})

    def _settlements(self, _raw: bytes):
        settlements = self.facilitator.ledger.snapshot()
        self._json(200, {"settlements": settlements, "count": len(settlements), "chain": "none"})

    def _reset(self, _raw: bytes):
        """Forgets every settlement and spent nonce, and restores the start-up control."""
        self.facilitator.ledger.reset()
        with self.facilitator.control_lock:
            self.facilitator.control = self.facilitator.initial_control
        log("reset: settlements and spent nonces forgotten, control restored")
        self._json(200, {"reset": True, "control": asdict(self.facilitator.current())})


def serve(facilitator: Facilitator, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"facilitator": facilitator})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"--listen takes HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Tollgate's local x402 facilitator (offline: it touches no chain and moves no money).")
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 7403), metavar="HOST:PORT",
                        help="where to listen (default 127.0.0.1:7403)")
    parser.add_argument("--ledger", metavar="PATH",
                        help="JSON-lines file of settlements, read at start and appended to (default: memory only)")
    parser.add_argument("--network", action="append", metavar="NETWORK",
                        help="a network to support, CAIP-2 (eip155:84532) or v1 name (base-sepolia); "
                             "repeatable (default eip155:84532)")
    parser.add_argument("--require-auth", metavar="TOKEN",
                        help="answer 401 unless the request has Authorization: Bearer TOKEN (not /healthz)")
    parser.add_argument("--expiry-margin", type=int, default=6, metavar="SECONDS",
                        help="refuse an authorization expiring within this many seconds (default 6, as the "
                             "SDK's facilitator; 0 means validBefore > now)")
    defaults = Control()
    parser.add_argument("--settle", choices=SETTLE_MODES, default=defaults.settle, help="settle behaviour")
    parser.add_argument("--verify", choices=VERIFY_MODES, default=defaults.verify, help="verify behaviour")
    parser.add_argument("--supported", choices=SUPPORTED_MODES, default=defaults.supported, help="/supported behaviour")
    parser.add_argument("--delay-ms", type=int, default=defaults.delay_ms, help="delay before each verify/settle answer")
    parser.add_argument("--timeout-s", type=float, default=defaults.timeout_s,
                        help="how long the timeout modes sleep (default 30)")
    parser.add_argument("--settle-reason", default=defaults.settle_reason, help="errorReason of settle fail")
    parser.add_argument("--verify-reason", default=defaults.verify_reason, help="invalidReason of verify invalid")
    parser.add_argument("--reject-status", type=int, default=defaults.reject_status,
                        help="HTTP status of refusals (isValid:false, success:false); default 200")
    parser.add_argument("--error-status", type=int, default=defaults.error_status, help="HTTP status of 5xx mode")
    parser.add_argument("--no-signature-check", action="store_true",
                        help="BENCHMARKS ONLY: do not recover EIP-712 signatures (every other check still runs), so "
                             "that the facilitator answers at once and its own CPU time does not crowd the processes "
                             "being measured. Any signature from the right payer's fields passes.")
    args = parser.parse_args(argv)

    try:
        networks = []
        for text in args.network or ["eip155:84532"]:
            network = parse_network(text)
            if network not in networks:
                networks.append(network)
        control = Control().updated({
            "settle": args.settle, "verify": args.verify, "supported": args.supported, "delay_ms": args.delay_ms,
            "timeout_s": args.timeout_s, "settle_reason": args.settle_reason, "verify_reason": args.verify_reason,
            "reject_status": args.reject_status, "error_status": args.error_status})
    except ValueError as problem:
        parser.error(str(problem))
    if args.expiry_margin < 0:
        parser.error("--expiry-margin must not be negative")

    ledger = Ledger(args.ledger)
    facilitator = Facilitator(networks, control, ledger, args.require_auth, args.expiry_margin,
                              check_signatures=not args.no_signature_check)
    host, port = args.listen
    server = serve(facilitator, host, port)
    bound_port = server.server_address[1]

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    names = ", ".join(n.caip2 + (f" ({n.v1_name})" if n.v1_name else "") for n in networks)
    log(f"listening on http://{host}:{bound_port} - OFFLINE TEST FACILITATOR: touches no chain, moves no money, "
        f"checks no balances, makes up transaction hashes. Networks: {names}. "
        f"Ledger: {args.ledger or 'memory only'} ({ledger.loaded} settlements loaded). "
        f"Auth: {'bearer token required' if args.require_auth else 'none'}. "
        f"{'SIGNATURES NOT CHECKED (--no-signature-check, benchmarks only). ' if args.no_signature_check else ''}"
        f"Modes: settle={control.settle} verify={control.verify} supported={control.supported}.")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
