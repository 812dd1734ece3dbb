#!/usr/bin/env python3
"""A LOCAL STAND-IN for Stripe's meter events API, for Tollgate's tests. It is not Stripe.

    python3 tools/stripe/stripe_server.py --listen 127.0.0.1:7404 [--secret-key sk_test_local]

It answers `POST /v1/billing/meter_events` the way Stripe documents it, and nothing else of
Stripe's API. No money, customer or invoice exists here: accepted events are kept in memory.
Every answer carries `X-Tollgate-Stripe: local stand-in; not Stripe`, and the start-up line says so.

Requests are validated strictly, and a malformed one gets a Stripe-style 400
(`{"error": {"type": "invalid_request_error", "code": ..., "param": ..., "message": ...}}`):
  - method POST and path exactly `/v1/billing/meter_events` (else 404 / 405);
  - `Authorization: Bearer <secret key>` (else 401, `authentication_error`);
  - `Content-Type: application/x-www-form-urlencoded` and a body that parses as such, every field
    once (else 400 / 415);
  - `event_name` (1..100 characters), `payload[stripe_customer_id]` (`cus_...`), `payload[value]`
    (a whole number > 0), `timestamp` (Unix seconds within the past 35 days and at most 5 minutes
    ahead) and `identifier` (1..100 characters) all present; no field Tollgate does not send.
Events are de-duplicated by `identifier`, as Stripe does: a reused identifier gets the original
event back (200) and is not counted again; a reused identifier with a different event is refused
(400, `idempotency_error`) so a test notices a sender that changed what it resends.

For tests:
  GET  /_events    {"events": [accepted events, in order], "identifiers": [of every valid request, in
                   order, including those failed on purpose], "requests": N, "duplicates": N, "rejected": N,
                   "failed": N}
  POST /_control   {"fail_next": N, "status": 500 | 429 | 503, "retry_after": S}: the next N valid
                   requests get that status (a Stripe-style error body) and are not recorded
  POST /_reset     forgets events and counters
  GET  /healthz    {"ok": true, "note": "..."}
Standard library only.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

NOTE = "Tollgate local stand-in for Stripe's meter events API; not Stripe, no money or customers exist here"
HEADER = ("X-Tollgate-Stripe", "local stand-in; not Stripe")
PATH = "/v1/billing/meter_events"
FIELDS = ("event_name", "payload[stripe_customer_id]", "payload[value]", "timestamp", "identifier")
MAX_BODY = 64 * 1024


class StripeError(Exception):
    def __init__(self, status, kind, code, message, param=None):
        super().__init__(message)
        self.status, self.kind, self.code, self.message, self.param = status, kind, code, message, param

    def body(self):
        error = {"type": self.kind, "code": self.code, "message": self.message}
        if self.param:
            error["param"] = self.param
        return {"error": error}


class Meters:
    """Accepted events by identifier, failure injection, counters. Thread-safe."""

    def __init__(self, secret_key):
        self.secret_key = secret_key
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.events = []
            self.identifiers = []  # of every valid request, accepted or failed on purpose, in order
            self.by_identifier = {}
            self.requests = 0
            self.duplicates = 0
            self.rejected = 0
            self.failed = 0
            self.fail_next = 0
            self.fail_status = 500
            self.retry_after = None

    def create(self, fields):
        """Validated fields → (status, body, headers)."""
        event = {
            "object": "billing.meter_event",
            "event_name": fields["event_name"],
            "identifier": fields["identifier"],
            "livemode": False,
            "payload": {"stripe_customer_id": fields["payload[stripe_customer_id]"], "value": fields["payload[value]"]},
            "timestamp": int(fields["timestamp"]),
        }
        with self.lock:
            self.identifiers.append(event["identifier"])
            if self.fail_next > 0:
                self.fail_next -= 1
                self.failed += 1
                status = self.fail_status
                headers = [("Retry-After", str(self.retry_after))] if self.retry_after is not None else []
                kind = "rate_limit_error" if status == 429 else "api_error"
                return status, StripeError(status, kind, "injected", f"injected failure ({status})").body(), headers
            original = self.by_identifier.get(event["identifier"])
            if original is not None:
                same = all(original[k] == event[k] for k in ("event_name", "payload", "timestamp"))
                if not same:
                    self.rejected += 1
                    raise StripeError(400, "idempotency_error", "idempotency_key_in_use",
                                      "identifier was already used for a different event", "identifier")
                self.duplicates += 1
                return 200, original, []
            event["created"] = int(time.time())
            self.by_identifier[event["identifier"]] = event
            self.events.append(event)
            return 200, event, []

    def snapshot(self):
        with self.lock:
            return {"events": list(self.events), "identifiers": list(self.identifiers), "requests": self.requests, "duplicates": self.duplicates,
                    "rejected": self.rejected, "failed": self.failed, "note": NOTE}


def validate(headers, body, secret_key):
    """Checks auth, content type and fields; returns the fields or raises StripeError."""
    auth = headers.get("Authorization", "")
    if auth != f"Bearer {secret_key}":
        raise StripeError(401, "authentication_error", "api_key_invalid",
                          "Invalid API Key provided" if auth.startswith("Bearer ") else "You did not provide an API key.")
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise StripeError(415, "invalid_request_error", "unsupported_content_type",
                          f"Content-Type must be application/x-www-form-urlencoded, got {content_type!r}")
    try:
        text = body.decode("utf-8")
        parsed = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError) as error:
        raise StripeError(400, "invalid_request_error", "parameter_invalid", f"malformed form body: {error}")
    for name, values in parsed.items():
        if name not in FIELDS:
            raise StripeError(400, "invalid_request_error", "parameter_unknown", f"Received unknown parameter: {name}", name)
        if len(values) != 1:
            raise StripeError(400, "invalid_request_error", "parameter_invalid", f"{name} was given more than once", name)
    fields = {name: values[0] for name, values in parsed.items()}
    for name in FIELDS:
        if not fields.get(name):
            raise StripeError(400, "invalid_request_error", "parameter_missing", f"Missing required param: {name}.", name)
    if len(fields["event_name"]) > 100:
        raise StripeError(400, "invalid_request_error", "parameter_invalid", "event_name is longer than 100", "event_name")
    if not re.fullmatch(r"cus_[A-Za-z0-9_]+", fields["payload[stripe_customer_id]"]):
        raise StripeError(400, "invalid_request_error", "resource_missing", "No such customer", "payload[stripe_customer_id]")
    if not re.fullmatch(r"[1-9][0-9]{0,18}", fields["payload[value]"]):
        raise StripeError(400, "invalid_request_error", "parameter_invalid",
                          "payload[value] must be a whole number greater than 0", "payload[value]")
    if not re.fullmatch(r"[0-9]{1,12}", fields["timestamp"]):
        raise StripeError(400, "invalid_request_error", "parameter_invalid", "timestamp must be Unix seconds", "timestamp")
    now = int(time.time())
    stamp = int(fields["timestamp"])
    if stamp < now - 35 * 86400 or stamp > now + 300:
        raise StripeError(400, "invalid_request_error", "timestamp_out_of_range",
                          "timestamp must be within the past 35 days and at most 5 minutes ahead", "timestamp")
    if len(fields["identifier"]) > 100:
        raise StripeError(400, "invalid_request_error", "parameter_invalid", "identifier is longer than 100", "identifier")
    return fields


def make_handler(meters: Meters):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet: tests read /_events, not logs
            pass

        def send_json(self, status, body, headers=()):
            data = json.dumps(body, sort_keys=True).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header(*HEADER)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def read_body(self):
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                raise StripeError(411, "invalid_request_error", "length_required", "Content-Length is required")
            if int(length) > MAX_BODY:
                raise StripeError(413, "invalid_request_error", "body_too_large", "request body too large")
            return self.rfile.read(int(length))

        def handle_any(self, method):
            try:
                path = self.path.split("?", 1)[0]
                if path == PATH:
                    if method != "POST":
                        raise StripeError(405, "invalid_request_error", "method_not_allowed", f"{method} is not allowed on {PATH}")
                    with meters.lock:
                        meters.requests += 1
                    body = self.read_body()
                    try:
                        fields = validate(self.headers, body, meters.secret_key)
                    except StripeError:
                        with meters.lock:
                            meters.rejected += 1
                        raise
                    status, answer, headers = meters.create(fields)
                    return self.send_json(status, answer, headers)
                if path == "/_events" and method == "GET":
                    return self.send_json(200, meters.snapshot())
                if path == "/healthz" and method == "GET":
                    return self.send_json(200, {"ok": True, "note": NOTE})
                if path == "/_reset" and method == "POST":
                    self.read_body()
                    meters.reset()
                    return self.send_json(200, {"ok": True})
                if path == "/_control" and method == "POST":
                    return self.control(self.read_body())
                raise StripeError(404, "invalid_request_error", "resource_missing", f"Unrecognized request URL ({method}: {path})")
            except StripeError as error:
                self.send_json(error.status, error.body())

        def control(self, raw):
            try:
                changes = json.loads(raw or b"{}")
                fail_next = int(changes.get("fail_next", 0))
                status = int(changes.get("status", 500))
                retry_after = changes.get("retry_after")
                if fail_next < 0 or status not in (429, 500, 502, 503, 504) or (retry_after is not None and int(retry_after) < 0):
                    raise ValueError("fail_next >= 0, status one of 429, 500, 502, 503, 504, retry_after >= 0")
            except (ValueError, TypeError, AttributeError) as error:
                raise StripeError(400, "invalid_request_error", "parameter_invalid", f"bad control: {error}")
            with meters.lock:
                meters.fail_next, meters.fail_status = fail_next, status
                meters.retry_after = None if retry_after is None else int(retry_after)
            return self.send_json(200, {"fail_next": fail_next, "status": status, "retry_after": retry_after})

        def do_GET(self):
            self.handle_any("GET")

        def do_POST(self):
            self.handle_any("POST")

        def do_PUT(self):
            self.handle_any("PUT")

        def do_DELETE(self):
            self.handle_any("DELETE")

    return Handler


def main(argv=None):
    parser = argparse.ArgumentParser(description=NOTE)
    parser.add_argument("--listen", default="127.0.0.1:7404", metavar="HOST:PORT")
    parser.add_argument("--secret-key", default="sk_test_tollgate_local", help="the bearer token requests must carry")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--listen takes HOST:PORT, got {args.listen!r}")
    server = ThreadingHTTPServer((host, int(port)), make_handler(Meters(args.secret_key)))
    server.daemon_threads = True
    print(f"stripe_server: listening on http://{host}:{port} — {NOTE}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
