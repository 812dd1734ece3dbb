/// The x402 v2 402 challenge: the JSON carried, base64-encoded, in the `PAYMENT-REQUIRED` header.
///
/// `{x402Version: 2, error?, resource: {url, description?, mimeType?}, accepts: [...], extensions?}`.
public struct X402PaymentRequired: Sendable, Hashable, Codable {
    /// The protocol version this type speaks.
    public static let version = 2

    /// Why payment is required (`payment_required`, or a facilitator reason after a failed attempt).
    public var error: String?
    /// The resource the challenge is for.
    public var resource: X402ResourceInfo
    /// The ways to pay, any one of which the server accepts.
    public var accepts: [X402PaymentRequirements]
    /// Extension data by extension name (e.g. `payment-identifier`).
    public var extensions: [String: X402JSONValue]?

    /// Creates a challenge.
    public init(
        error: String?, resource: X402ResourceInfo, accepts: [X402PaymentRequirements],
        extensions: [String: X402JSONValue]? = nil
    ) {
        self.error = error
        self.resource = resource
        self.accepts = accepts
        self.extensions = extensions
    }

    enum CodingKeys: String, CodingKey {
        case x402Version, error, resource, accepts, extensions
    }

    /// Decodes and validates; a bad field throws `X402Error` naming it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try container.checkVersion(Self.version, forKey: .x402Version)
        error = try container.decodeIfPresent(String.self, forKey: .error)
        resource = try container.decode(X402ResourceInfo.self, forKey: .resource)
        accepts = try container.decode([X402PaymentRequirements].self, forKey: .accepts)
        extensions = try container.decodeIfPresent([String: X402JSONValue].self, forKey: .extensions)
    }

    /// Encodes the wire form: amounts and times as digit strings, the version's network spelling.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.version, forKey: .x402Version)
        try container.encodeIfPresent(error, forKey: .error)
        try container.encode(resource, forKey: .resource)
        try container.encode(accepts, forKey: .accepts)
        try container.encodeIfPresent(extensions, forKey: .extensions)
    }
}

/// The x402 v1 402 challenge: the JSON response body `{x402Version: 1, error, accepts: [...]}`.
public struct X402PaymentRequiredV1: Sendable, Hashable, Codable {
    /// The protocol version this type speaks.
    public static let version = 1

    /// Why payment is required.
    public var error: String?
    /// The ways to pay; empty when the network has no v1 name, so v1 clients cannot pay.
    public var accepts: [X402PaymentRequirementsV1]

    /// Creates a challenge.
    public init(error: String?, accepts: [X402PaymentRequirementsV1]) {
        self.error = error
        self.accepts = accepts
    }

    enum CodingKeys: String, CodingKey {
        case x402Version, error, accepts
    }

    /// Decodes and validates; a bad field throws `X402Error` naming it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try container.checkVersion(Self.version, forKey: .x402Version)
        error = try container.decodeIfPresent(String.self, forKey: .error)
        accepts = try container.decode([X402PaymentRequirementsV1].self, forKey: .accepts)
    }

    /// Encodes the wire form: amounts and times as digit strings, the version's network spelling.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.version, forKey: .x402Version)
        try container.encodeIfPresent(error, forKey: .error)
        try container.encode(accepts, forKey: .accepts)
    }
}
