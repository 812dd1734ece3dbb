#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import TollgateCore

/// What every connection of one server shares: configuration, resolver, recorder, metrics and the
/// canned JSON bodies of the proxy's own responses.
///
/// Threading: immutable; the resolver and recorder are `Sendable` by contract.
final class ProxyShared: Sendable {
    let configuration: ProxyConfiguration
    let resolver: any PrincipalResolver
    let recorder: any UsageRecorder
    /// Decides each call of a key with a plan; nil admits every known key (metering only).
    let gate: QuotaGate?
    /// Renders the x402 challenge of a 402; nil answers 402 with a plain JSON error.
    let challenges: (any PaymentChallengeRenderer)?
    /// Carries x402 payments to the collectors; nil refuses paid calls with 402.
    let payments: PaymentChannel?
    let metrics: ProxyMetrics
    let responses: LocalResponses
    /// `Host` for requests that came without one (HTTP/1.0).
    let upstreamHostHeader: String

    init(
        configuration: ProxyConfiguration, resolver: any PrincipalResolver, recorder: any UsageRecorder,
        gate: QuotaGate?, challenges: (any PaymentChallengeRenderer)?, payments: PaymentChannel? = nil
    ) {
        self.configuration = configuration
        self.resolver = resolver
        self.recorder = recorder
        self.gate = gate
        self.challenges = challenges
        self.payments = payments
        self.metrics = ProxyMetrics()
        self.responses = LocalResponses(maxBodyBytes: configuration.maxRequestBodyBytes)
        self.upstreamHostHeader = "\(configuration.upstreamHost):\(configuration.upstreamPort)"
    }
}

/// JSON bodies of the responses the proxy writes itself, encoded once.
struct LocalResponses: Sendable {
    let badRequest = Self.body(#"{"error":"bad_request","message":"malformed HTTP request"}"#)
    let headersTooLarge = Self.body(#"{"error":"request_header_fields_too_large"}"#)
    let bodyTooLarge: ByteBuffer
    let missingKey = Self.body(#"{"error":"missing_api_key","message":"send the key in Authorization: Bearer or X-API-Key"}"#)
    let unknownKey = Self.body(#"{"error":"unknown_api_key"}"#)
    let keyLookupTimeout = Self.body(#"{"error":"key_lookup_timeout","message":"the key could not be checked in time; retry"}"#)
    let upstreamUnavailable = Self.body(#"{"error":"upstream_unavailable","message":"could not connect to the upstream"}"#)
    let upstreamClosed = Self.body(#"{"error":"upstream_unavailable","message":"the upstream closed the connection"}"#)
    let upstreamTimeout = Self.body(#"{"error":"upstream_timeout","message":"the upstream did not answer in time"}"#)
    let paidResponseTooLarge = Self.body(#"{"error":"upstream_response_too_large","message":"a paid call's response is held until the payment settles, up to 8 MiB"}"#)

    init(maxBodyBytes: Int) {
        self.bodyTooLarge = Self.body(#"{"error":"request_body_too_large","limit_bytes":"# + String(maxBodyBytes) + "}")
    }

    private static func body(_ text: String) -> ByteBuffer {
        ByteBuffer(string: text)
    }
}

/// The wall clock, for the `at` of usage events (periods are calendar based).
enum WallClock {
    static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(nanosecondsSinceEpoch: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }
}
