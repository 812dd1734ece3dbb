import Foundation
import NIOHTTP1
import TollgateX402

/// Talks to an x402 facilitator: `POST /verify`, `POST /settle`, `GET /supported`.
///
/// Facilitators disagree on status codes, so the JSON body is read whatever the status; a body that
/// does not parse, a 5xx without a verdict, or a timeout is "not verified" / "not settled", never
/// success. The payment payload is forwarded as the exact JSON the client sent (re-encoding could
/// drop fields the facilitator checks); the requirements are always the server's own.
///
/// Threading: a `Sendable` value, over `OutboundHTTP`'s shared client (kept-alive connections, TLS
/// for `https`, each call bounded as a whole by `timeout`). `verify` and `settle` start from any
/// thread and answer on the client's event loop; `supported` is async.
///
/// ```swift
/// let facilitator = FacilitatorClient(settings: x402)
/// facilitator.verify(version: 2, payloadJSON: raw, requirementsJSON: mine) { verification in ... }
/// ```
public struct FacilitatorClient: Sendable {
    /// What `/verify` said.
    public enum Verification: Sendable, Hashable {
        /// Valid; `payer` as the facilitator reports it.
        case valid(payer: String?)
        /// Invalid, with the facilitator's reason (an x402 error code).
        case invalid(reason: String)
        /// No verdict: unreachable, timed out, 5xx or an unreadable body.
        case unavailable(reason: String)
    }

    /// What `/settle` said.
    public enum Settlement: Sendable, Hashable {
        /// Settled in `transaction` on `network`.
        case settled(transaction: String, network: String, payer: String?)
        /// Refused, with the reason (including `settlement_pending`: broadcast, not confirmed).
        case failed(reason: String)
        /// No verdict: unreachable, timed out, 5xx or an unreadable body.
        case unavailable(reason: String)
    }

    /// The facilitator's base URL.
    public let baseURL: String
    private let headers: HTTPHeaders
    private let timeout: Duration

    /// A client for the facilitator in `settings` (URL, optional Authorization header, timeout).
    public init(settings: X402Settings) {
        self.init(baseURL: settings.facilitatorURL, authorization: settings.facilitatorAuthorization,
                  timeout: .milliseconds(settings.facilitatorTimeoutMs))
    }

    /// A client for `baseURL` (`/verify`, `/settle`, `/supported` are appended).
    public init(baseURL: String, authorization: String? = nil, timeout: Duration = .seconds(10)) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        var headers: HTTPHeaders = ["Content-Type": "application/json", "Accept": "application/json"]
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        self.headers = headers
        self.timeout = timeout
    }

    /// `POST /verify` with the client's payload JSON and the server's requirements JSON, started
    /// from any thread; `completion` runs once, on the HTTP client's event loop.
    public func verify(version: Int, payloadJSON: [UInt8], requirementsJSON: [UInt8],
                       completion: @escaping @Sendable (Verification) -> Void) {
        self.post("/verify", body: Self.body(version: version, payload: payloadJSON, requirements: requirementsJSON)) { answer in
            completion(Self.verification(answer))
        }
    }

    /// `POST /settle` with the client's payload JSON and the server's requirements JSON, started
    /// from any thread; `completion` runs once, on the HTTP client's event loop.
    public func settle(version: Int, payloadJSON: [UInt8], requirementsJSON: [UInt8],
                       completion: @escaping @Sendable (Settlement) -> Void) {
        self.post("/settle", body: Self.body(version: version, payload: payloadJSON, requirements: requirementsJSON)) { answer in
            completion(Self.settlement(answer))
        }
    }

    static func verification(_ answer: Result<(Int, [String: Any]), FailureText>) -> Verification {
        guard case .success(let (status, object)) = answer else {
            if case .failure(let reason) = answer { return .unavailable(reason: reason.text) }
            return .unavailable(reason: "unexpected_verify_error")
        }
        if let valid = object["isValid"] as? Bool {
            if valid { return .valid(payer: object["payer"] as? String) }
            return .invalid(reason: (object["invalidReason"] as? String) ?? "invalid_payload")
        }
        return .unavailable(reason: status >= 500 ? "unexpected_verify_error" : "facilitator answered \(status) without isValid")
    }

    static func settlement(_ answer: Result<(Int, [String: Any]), FailureText>) -> Settlement {
        guard case .success(let (status, object)) = answer else {
            if case .failure(let reason) = answer { return .unavailable(reason: reason.text) }
            return .unavailable(reason: "unexpected_settle_error")
        }
        guard let success = object["success"] as? Bool else {
            return .unavailable(reason: status >= 500 ? "unexpected_settle_error" : "facilitator answered \(status) without success")
        }
        let reason = (object["errorReason"] as? String) ?? ""
        let transaction = (object["transaction"] as? String) ?? ""
        // Pending (broadcast, not confirmed) is not success, whatever `success` says.
        guard success, reason != "settlement_pending", !transaction.isEmpty else {
            return .failed(reason: reason.isEmpty ? (success ? "settlement_pending" : "unexpected_settle_error") : reason)
        }
        return .settled(transaction: transaction, network: (object["network"] as? String) ?? "", payer: object["payer"] as? String)
    }

    /// `GET /supported`: the kinds as `x402Version/scheme/network` strings, or why there are none.
    public func supported() async -> Result<[String], FailureText> {
        let answer: OutboundHTTP.Answer
        switch await OutboundHTTP.get(baseURL + "/supported", headers: headers, timeout: timeout) {
        case .success(let got): answer = got
        case .failure(let failure): return .failure(FailureText(text: "/supported: \(Self.text(failure))"))
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any],
              let kinds = object["kinds"] as? [[String: Any]] else {
            return .failure(FailureText(text: "/supported did not answer {kinds: [...]}"))
        }
        return .success(kinds.map { kind in
            "v\((kind["x402Version"] as? Int) ?? 0)/\((kind["scheme"] as? String) ?? "?")/\((kind["network"] as? String) ?? "?")"
        })
    }

    /// Why a call has no answer.
    public struct FailureText: Error, Sendable, Hashable {
        /// What happened.
        public var text: String
    }

    private func post(_ path: String, body: [UInt8], completion: @escaping @Sendable (Result<(Int, [String: Any]), FailureText>) -> Void) {
        OutboundHTTP.call(baseURL + path, method: .POST, headers: headers, body: body, timeout: timeout) { answer in
            switch answer {
            case .success(let answer):
                guard let object = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any] else {
                    completion(.failure(FailureText(text: "facilitator_unparseable_response")))
                    return
                }
                completion(.success((answer.status, object)))
            case .failure(let failure):
                completion(.failure(FailureText(text: Self.text(failure))))
            }
        }
    }

    /// The reason code a failed call is reported with.
    static func text(_ failure: OutboundHTTP.Failure) -> String {
        switch failure {
        case .timeout: return "facilitator_timeout"
        case .unreachable: return "facilitator_unreachable"
        case .badURL: return "facilitator_bad_url"
        case .tooLarge: return "facilitator_unparseable_response"
        }
    }

    /// `{"x402Version":V,"paymentPayload":<raw>,"paymentRequirements":<raw>}` without re-encoding either part.
    static func body(version: Int, payload: [UInt8], requirements: [UInt8]) -> [UInt8] {
        var bytes = Array("{\"x402Version\":\(version),\"paymentPayload\":".utf8)
        bytes.reserveCapacity(bytes.count + payload.count + requirements.count + 32)
        bytes += payload
        bytes += Array(",\"paymentRequirements\":".utf8)
        bytes += requirements
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}
