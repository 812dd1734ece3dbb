import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TollgateX402

/// Talks to an x402 facilitator: `POST /verify`, `POST /settle`, `GET /supported`.
///
/// Facilitators disagree on status codes, so the JSON body is read whatever the status; a body that
/// does not parse, a 5xx without a verdict, or a timeout is "not verified" / "not settled", never
/// success. The payment payload is forwarded as the exact JSON the client sent (re-encoding could
/// drop fields the facilitator checks); the requirements are always the server's own.
///
/// Threading: a `Sendable` value; every call is async and runs on URLSession's own threads.
///
/// ```swift
/// let facilitator = FacilitatorClient(settings: x402)
/// switch await facilitator.verify(version: 2, payloadJSON: raw, requirementsJSON: mine) { ... }
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
    private let authorization: String?
    private let timeout: TimeInterval

    /// A client for the facilitator in `settings` (URL, optional Authorization header, timeout).
    public init(settings: X402Settings) {
        self.init(baseURL: settings.facilitatorURL, authorization: settings.facilitatorAuthorization,
                  timeout: .milliseconds(settings.facilitatorTimeoutMs))
    }

    /// A client for `baseURL` (`/verify`, `/settle`, `/supported` are appended).
    public init(baseURL: String, authorization: String? = nil, timeout: Duration = .seconds(10)) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.authorization = authorization
        self.timeout = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
    }

    /// `POST /verify` with the client's payload JSON and the server's requirements JSON.
    public func verify(version: Int, payloadJSON: [UInt8], requirementsJSON: [UInt8]) async -> Verification {
        let answer = await post("/verify", body: Self.body(version: version, payload: payloadJSON, requirements: requirementsJSON))
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

    /// `POST /settle` with the client's payload JSON and the server's requirements JSON.
    public func settle(version: Int, payloadJSON: [UInt8], requirementsJSON: [UInt8]) async -> Settlement {
        let answer = await post("/settle", body: Self.body(version: version, payload: payloadJSON, requirements: requirementsJSON))
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
        guard let url = URL(string: baseURL + "/supported") else { return .failure(FailureText(text: "bad facilitator URL")) }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        do {
            let (data, _) = try await URLSession.shared.data(for: request)
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any], let kinds = object["kinds"] as? [[String: Any]] else {
                return .failure(FailureText(text: "/supported did not answer {kinds: [...]}"))
            }
            return .success(kinds.map { kind in
                "v\((kind["x402Version"] as? Int) ?? 0)/\((kind["scheme"] as? String) ?? "?")/\((kind["network"] as? String) ?? "?")"
            })
        } catch {
            return .failure(FailureText(text: "/supported: \(error.localizedDescription)"))
        }
    }

    /// Why a call has no answer.
    public struct FailureText: Error, Sendable, Hashable {
        /// What happened.
        public var text: String
    }

    private func post(_ path: String, body: Data) async -> Result<(Int, [String: Any]), FailureText> {
        guard let url = URL(string: baseURL + path) else { return .failure(FailureText(text: "bad facilitator URL")) }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        let data: Data
        let response: URLResponse
        // URLSession's timeout is an idle timeout on Linux: a facilitator that trickles, or sleeps
        // after accepting, could hold a payment for ever. The whole call gets `timeout`.
        let prepared = request
        switch await Self.within(timeout, { try await URLSession.shared.data(for: prepared) }) {
        case .some(.success(let answer)):
            (data, response) = answer
        case .some(.failure(let error)):
            let nsError = error as NSError
            let timedOut = nsError.domain == NSURLErrorDomain && nsError.code == NSURLErrorTimedOut
            return .failure(FailureText(text: timedOut ? "facilitator_timeout" : "facilitator_unreachable"))
        case nil:
            return .failure(FailureText(text: "facilitator_timeout"))
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            return .failure(FailureText(text: "facilitator_unparseable_response"))
        }
        return .success((status, object))
    }

    /// The result of `work`, or nil when it takes longer than `seconds` (the work is then abandoned).
    static func within<T: Sendable>(_ seconds: TimeInterval, _ work: @escaping @Sendable () async throws -> T) async -> Result<T, any Error>? {
        let box = FirstResult<Result<T, any Error>?>()
        return await withCheckedContinuation { continuation in
            box.set(continuation)
            let worker = Task {
                do { box.resume(.success(try await work())) } catch { box.resume(.failure(error)) }
            }
            Task {
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1_000)))
                box.resume(nil)
                worker.cancel()
            }
        }
    }

    /// `{"x402Version":V,"paymentPayload":<raw>,"paymentRequirements":<raw>}` without re-encoding either part.
    static func body(version: Int, payload: [UInt8], requirements: [UInt8]) -> Data {
        var bytes = Array("{\"x402Version\":\(version),\"paymentPayload\":".utf8)
        bytes += payload
        bytes += Array(",\"paymentRequirements\":".utf8)
        bytes += requirements
        bytes.append(UInt8(ascii: "}"))
        return Data(bytes)
    }
}

/// Resumes a continuation with the first value offered; later ones are dropped.
// @unchecked Sendable: every property is only touched under `lock`.
final class FirstResult<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, Never>?
    private var early: T?
    private var done = false

    func set(_ continuation: CheckedContinuation<T, Never>) {
        let value: T? = lock.withLock {
            if done, let early { return early }
            self.continuation = continuation
            return nil
        }
        if let value { continuation.resume(returning: value) }
    }

    func resume(_ value: T) {
        let waiting: CheckedContinuation<T, Never>? = lock.withLock {
            guard !done else { return nil }
            done = true
            guard let continuation else {
                early = value
                return nil
            }
            self.continuation = nil
            return continuation
        }
        waiting?.resume(returning: value)
    }
}
