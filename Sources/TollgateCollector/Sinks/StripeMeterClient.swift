import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One Stripe meter event: `POST /v1/billing/meter_events`.
public struct MeterEvent: Sendable, Hashable {
    /// The meter's `event_name`.
    public var eventName: String
    /// `payload[stripe_customer_id]`.
    public var customerID: String
    /// `payload[value]`: whole units, above zero.
    public var value: UInt64
    /// Unix seconds.
    public var timestamp: Int64
    /// Stripe de-duplicates events by it.
    public var identifier: String

    /// An event with the given fields.
    public init(eventName: String, customerID: String, value: UInt64, timestamp: Int64, identifier: String) {
        self.eventName = eventName
        self.customerID = customerID
        self.value = value
        self.timestamp = timestamp
        self.identifier = identifier
    }

    /// The `application/x-www-form-urlencoded` body, fields in a fixed order.
    public var formBody: String {
        [
            ("event_name", self.eventName), ("payload[stripe_customer_id]", self.customerID),
            ("payload[value]", String(self.value)), ("timestamp", String(self.timestamp)), ("identifier", self.identifier),
        ].map { "\(Self.formEncode($0.0))=\(Self.formEncode($0.1))" }.joined(separator: "&")
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters.
    static func formEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}

/// Sends meter events to Stripe (or anything that speaks its API at `baseURL`).
///
/// Threading: a `Sendable` value; `send` is async and runs on URLSession's own threads, like
/// `FacilitatorClient`. Every call is bounded by `timeout` as a whole.
public struct StripeMeterClient: Sendable {
    /// What one request came to.
    public enum Outcome: Sendable, Hashable {
        /// 2xx: Stripe has the event (now, or from an earlier request with the same identifier).
        case accepted
        /// 429, 5xx, a timeout or no connection: worth another try, after `retryAfter` if Stripe said.
        case retryable(status: String, retryAfter: Duration?)
        /// Any other 4xx: the request itself is wrong; retrying it unchanged cannot help.
        case rejected(status: Int, message: String)
    }

    /// The base URL, without a trailing `/`.
    public let baseURL: String
    private let secretKey: String
    private let timeout: TimeInterval

    /// A client for `baseURL` (`/v1/billing/meter_events` is appended) authenticating with `secretKey`.
    public init(baseURL: String, secretKey: String, timeout: Duration) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.secretKey = secretKey
        self.timeout = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
    }

    /// POSTs `event` once.
    public func send(_ event: MeterEvent) async -> Outcome {
        guard let url = URL(string: self.baseURL + "/v1/billing/meter_events") else {
            return .rejected(status: 0, message: "bad base URL \(self.baseURL)")
        }
        var request = URLRequest(url: url, timeoutInterval: self.timeout)
        request.httpMethod = "POST"
        request.httpBody = Data(event.formBody.utf8)
        request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(self.secretKey)", forHTTPHeaderField: "Authorization")
        let prepared = request
        let answer = await FacilitatorClient.within(self.timeout) { try await URLSession.shared.data(for: prepared) }
        guard case .success(let (data, response))? = answer else {
            return .retryable(status: answer == nil ? "timeout" : "network", retryAfter: nil)
        }
        let http = response as? HTTPURLResponse
        let status = http?.statusCode ?? 0
        switch status {
        case 200..<300:
            return .accepted
        case 429, 500...599:
            let retryAfter = (http?.value(forHTTPHeaderField: "Retry-After")).flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            return .retryable(status: String(status), retryAfter: retryAfter.map { .seconds(max(0, min($0, 3_600))) })
        default:
            return .rejected(status: status, message: Self.errorMessage(data))
        }
    }

    /// Stripe's `{"error": {"message": ...}}`, or the start of the body.
    static func errorMessage(_ data: Data) -> String {
        if let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
           let error = object["error"] as? [String: Any], let message = error["message"] as? String {
            return message
        }
        return String(decoding: data.prefix(200), as: UTF8.self)
    }
}
