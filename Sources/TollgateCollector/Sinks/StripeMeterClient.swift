import Foundation
import NIOHTTP1

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
/// Threading: a `Sendable` value; `send` is async, over `OutboundHTTP`'s shared client like
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
    private let timeout: Duration

    /// A client for `baseURL` (`/v1/billing/meter_events` is appended) authenticating with `secretKey`.
    public init(baseURL: String, secretKey: String, timeout: Duration) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.secretKey = secretKey
        self.timeout = timeout
    }

    /// POSTs `event` once.
    public func send(_ event: MeterEvent) async -> Outcome {
        let headers: HTTPHeaders = [
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Bearer \(self.secretKey)",
        ]
        let answer: OutboundHTTP.Answer
        switch await OutboundHTTP.post(self.baseURL + "/v1/billing/meter_events", headers: headers,
                                       body: Array(event.formBody.utf8), timeout: self.timeout) {
        case .success(let got): answer = got
        case .failure(.badURL): return .rejected(status: 0, message: "bad base URL \(self.baseURL)")
        case .failure(.timeout): return .retryable(status: "timeout", retryAfter: nil)
        case .failure(.unreachable), .failure(.tooLarge): return .retryable(status: "network", retryAfter: nil)
        }
        let status = answer.status
        switch status {
        case 200..<300:
            return .accepted
        case 429, 500...599:
            let retryAfter = answer.headers.first(name: "Retry-After").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            return .retryable(status: String(status), retryAfter: retryAfter.map { .seconds(max(0, min($0, 3_600))) })
        default:
            return .rejected(status: status, message: Self.errorMessage(Data(answer.body)))
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
