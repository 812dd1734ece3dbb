/// A client's x402 v2 payment: the JSON carried, base64-encoded, in the `PAYMENT-SIGNATURE` header.
///
/// `{x402Version: 2, resource?, accepted: <one requirement>, payload: {signature, authorization}, extensions?}`.
/// Decoding checks shape and field syntax only; whether `accepted` equals the server's own
/// requirement and whether the signature is valid are later steps (matching, the facilitator).
public struct X402PaymentPayload: Sendable, Hashable, Codable {
    /// The protocol version this type speaks.
    public static let version = 2

    /// The resource the client says it pays for (informational; the server knows its route).
    public var resource: X402ResourceInfo?
    /// The requirement the client chose, copied from the challenge.
    public var accepted: X402PaymentRequirements
    /// The signed EIP-3009 authorization.
    public var payload: X402ExactEVMPayload
    /// Extension data by extension name (e.g. `payment-identifier`).
    public var extensions: [String: X402JSONValue]?

    /// Creates a payment.
    public init(
        resource: X402ResourceInfo? = nil, accepted: X402PaymentRequirements, payload: X402ExactEVMPayload,
        extensions: [String: X402JSONValue]? = nil
    ) {
        self.resource = resource
        self.accepted = accepted
        self.payload = payload
        self.extensions = extensions
    }

    enum CodingKeys: String, CodingKey {
        case x402Version, resource, accepted, payload, extensions
    }

    /// Decodes and validates; a bad field throws `X402Error` naming it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try container.checkVersion(Self.version, forKey: .x402Version)
        accepted = try container.decode(X402PaymentRequirements.self, forKey: .accepted)
        // The scheme decides the payload's shape, so it is checked before the payload is read.
        guard accepted.scheme == X402PaymentRequirements.exactScheme else {
            throw X402Error(.unsupportedScheme, "accepted.scheme: only exact is supported")
        }
        payload = try container.decode(X402ExactEVMPayload.self, forKey: .payload)
        resource = try container.decodeIfPresent(X402ResourceInfo.self, forKey: .resource)
        if decoder.userInfo[X402Coding.extensionsReadFromBytes] != nil {
            // X402Decoder reads them from the bytes (X402JSONReader); only their type is checked here.
            _ = try container.decodeIfPresent(X402Coding.AnyObject.self, forKey: .extensions)
            extensions = nil
        } else {
            extensions = try container.decodeIfPresent([String: X402JSONValue].self, forKey: .extensions)
        }
    }

    /// Encodes the wire form: amounts and times as digit strings, the version's network spelling.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.version, forKey: .x402Version)
        try container.encodeIfPresent(resource, forKey: .resource)
        try container.encode(accepted, forKey: .accepted)
        try container.encode(payload, forKey: .payload)
        try container.encodeIfPresent(extensions, forKey: .extensions)
    }
}

/// A client's x402 v1 payment: the JSON carried, base64-encoded, in the `X-PAYMENT` header.
///
/// `{x402Version: 1, scheme, network, payload: {signature, authorization}}`. v1 carries no copy of
/// the requirement: the server matches `scheme`, `network` and the authorization against its own.
public struct X402PaymentPayloadV1: Sendable, Hashable, Codable {
    /// The protocol version this type speaks.
    public static let version = 1

    /// The payment scheme; always `exact` once decoded.
    public var scheme: String
    /// The network, written as its v1 name.
    public var network: X402Network
    /// The signed EIP-3009 authorization.
    public var payload: X402ExactEVMPayload

    /// Creates a payment.
    public init(scheme: String = X402PaymentRequirements.exactScheme, network: X402Network, payload: X402ExactEVMPayload) {
        self.scheme = scheme
        self.network = network
        self.payload = payload
    }

    enum CodingKeys: String, CodingKey {
        case x402Version, scheme, network, payload
    }

    /// Decodes and validates; a bad field throws `X402Error` naming it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try container.checkVersion(Self.version, forKey: .x402Version)
        scheme = try container.decodeNonEmpty(forKey: .scheme)
        guard scheme == X402PaymentRequirements.exactScheme else {
            throw X402Error(.unsupportedScheme, "scheme: only exact is supported")
        }
        network = try container.decodeNetwork(forKey: .network, version: 1)
        payload = try container.decode(X402ExactEVMPayload.self, forKey: .payload)
    }

    /// Encodes the wire form: amounts and times as digit strings, the version's network spelling.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.version, forKey: .x402Version)
        try container.encode(scheme, forKey: .scheme)
        try container.encode(network.v1Name ?? network.caip2, forKey: .network)
        try container.encode(payload, forKey: .payload)
    }
}

/// The `exact` scheme's EVM payload: an EIP-3009 `transferWithAuthorization` and its signature.
public struct X402ExactEVMPayload: Sendable, Hashable, Codable {
    /// The signature as `0x` hex: 65 bytes from an EOA (r, s, v), longer from a smart wallet
    /// (ERC-1271/ERC-6492), which the facilitator checks; the decoder only bounds its shape.
    public var signature: String
    /// What was signed.
    public var authorization: X402EIP3009Authorization

    /// Creates a payload.
    public init(signature: String, authorization: X402EIP3009Authorization) {
        self.signature = signature
        self.authorization = authorization
    }

    /// Signature length bounds in bytes: an EOA's 65 up to a generous smart-wallet wrapper.
    static let signatureBytes = 65...4096

    enum CodingKeys: String, CodingKey {
        case signature, authorization
    }

    /// Decodes and validates; a bad field throws `X402Error` naming it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        signature = try container.decode(String.self, forKey: .signature)
        guard X402Field.isHex(signature, bytes: Self.signatureBytes) else {
            throw X402Error(.invalidField, "\(X402Coding.path(container.codingPath, CodingKeys.signature)): expected 0x followed by at least 65 bytes of hex")
        }
        authorization = try container.decode(X402EIP3009Authorization.self, forKey: .authorization)
    }
}

/// The fields of an EIP-3009 `transferWithAuthorization`, typed: addresses checked, amounts and
/// times integers (digit strings on the wire), the nonce 32 bytes of `0x` hex.
public struct X402EIP3009Authorization: Sendable, Hashable, Codable {
    /// The payer.
    public var from: EVMAddress
    /// The recipient; must be the server's `payTo` (checked when matching, not here).
    public var to: EVMAddress
    /// The amount in atomic units.
    public var value: UInt64
    /// Unix seconds after which the authorization is valid.
    public var validAfter: UInt64
    /// Unix seconds before which the authorization is valid.
    public var validBefore: UInt64
    /// The single-use nonce: `0x` and 64 hex digits.
    public var nonce: String

    /// Creates an authorization.
    public init(from: EVMAddress, to: EVMAddress, value: UInt64, validAfter: UInt64, validBefore: UInt64, nonce: String) {
        self.from = from
        self.to = to
        self.value = value
        self.validAfter = validAfter
        self.validBefore = validBefore
        self.nonce = nonce
    }

    enum CodingKeys: String, CodingKey {
        case from, to, value, validAfter, validBefore, nonce
    }

    /// Decodes and validates; a bad field throws `X402Error` naming it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        from = try container.decodeAddress(forKey: .from)
        to = try container.decodeAddress(forKey: .to)
        value = try container.decodeUnsignedString(forKey: .value)
        validAfter = try container.decodeUnsignedString(forKey: .validAfter)
        validBefore = try container.decodeUnsignedString(forKey: .validBefore)
        nonce = try container.decode(String.self, forKey: .nonce)
        guard X402Field.isHex(nonce, bytes: 32...32) else {
            throw X402Error(.invalidField, "\(X402Coding.path(container.codingPath, CodingKeys.nonce)): expected 0x followed by 64 hex digits")
        }
    }

    /// Encodes the wire form: amounts and times as digit strings, the version's network spelling.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(from.text, forKey: .from)
        try container.encode(to.text, forKey: .to)
        try container.encode(String(value), forKey: .value)
        try container.encode(String(validAfter), forKey: .validAfter)
        try container.encode(String(validBefore), forKey: .validBefore)
        try container.encode(nonce, forKey: .nonce)
    }
}
