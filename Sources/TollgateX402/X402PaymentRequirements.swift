/// One way to pay, as x402 v2 writes it in `accepts` and the client copies into `accepted`.
///
/// Typed: the amount is integer atomic units (a digit string on the wire), the network is CAIP-2,
/// addresses are checked. Decoding refuses anything else, naming the field.
public struct X402PaymentRequirements: Sendable, Hashable, Codable {
    /// The payment scheme; Tollgate offers `exact`.
    public var scheme: String
    /// The network, written as its CAIP-2 id (`eip155:84532`).
    public var network: X402Network
    /// The price in the asset's atomic units (`10000` is 0.01 USDC), written as a digit string.
    public var amount: UInt64
    /// The token contract.
    public var asset: EVMAddress
    /// The recipient.
    public var payTo: EVMAddress
    /// How long the signed authorization may stay valid.
    public var maxTimeoutSeconds: Int
    /// Scheme data; for `exact` on EVM the token's EIP-712 domain `{name, version}`.
    public var extra: [String: X402JSONValue]?

    /// Creates requirements.
    public init(
        scheme: String = X402PaymentRequirements.exactScheme,
        network: X402Network,
        amount: UInt64,
        asset: EVMAddress,
        payTo: EVMAddress,
        maxTimeoutSeconds: Int,
        extra: [String: X402JSONValue]? = nil
    ) {
        self.scheme = scheme
        self.network = network
        self.amount = amount
        self.asset = asset
        self.payTo = payTo
        self.maxTimeoutSeconds = maxTimeoutSeconds
        self.extra = extra
    }

    /// The only scheme Tollgate offers: pay exactly `amount`.
    public static let exactScheme = "exact"

    enum CodingKeys: String, CodingKey {
        case scheme, network, amount, asset, payTo, maxTimeoutSeconds, extra
    }

    /// Decodes and validates; a bad field throws `X402Error` naming it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        scheme = try container.decodeNonEmpty(forKey: .scheme)
        network = try container.decodeNetwork(forKey: .network, version: 2)
        amount = try container.decodeUnsignedString(forKey: .amount)
        asset = try container.decodeAddress(forKey: .asset)
        payTo = try container.decodeAddress(forKey: .payTo)
        maxTimeoutSeconds = try container.decodeTimeout(forKey: .maxTimeoutSeconds)
        extra = try container.decodeIfPresent([String: X402JSONValue].self, forKey: .extra)
    }

    /// Encodes the wire form: amounts and times as digit strings, the version's network spelling.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(scheme, forKey: .scheme)
        try container.encode(network.caip2, forKey: .network)
        try container.encode(String(amount), forKey: .amount)
        try container.encode(asset.text, forKey: .asset)
        try container.encode(payTo.text, forKey: .payTo)
        try container.encode(maxTimeoutSeconds, forKey: .maxTimeoutSeconds)
        try container.encodeIfPresent(extra, forKey: .extra)
    }
}

/// One way to pay, as x402 v1 writes it: the amount is `maxAmountRequired`, the network a v1 name
/// (`base-sepolia`), and the resource's URL, description and MIME type sit in each requirement.
public struct X402PaymentRequirementsV1: Sendable, Hashable, Codable {
    /// The payment scheme; Tollgate offers `exact`.
    public var scheme: String
    /// The network; always one that has a v1 name (checked by the initializer and the decoder).
    public private(set) var network: X402Network
    /// The price in atomic units, written as a digit string.
    public var maxAmountRequired: UInt64
    /// The resource's URL.
    public var resource: String
    /// What the payment buys, for people.
    public var description: String
    /// The MIME type of the resource's response.
    public var mimeType: String
    /// A JSON schema of the response; optional in v1, and Tollgate sends none.
    public var outputSchema: X402JSONValue?
    /// How long the signed authorization may stay valid.
    public var maxTimeoutSeconds: Int
    /// The token contract.
    public var asset: EVMAddress
    /// The recipient.
    public var payTo: EVMAddress
    /// Scheme data; for `exact` on EVM the token's EIP-712 domain `{name, version}`.
    public var extra: [String: X402JSONValue]?

    /// Creates requirements; throws `unsupportedNetwork` when v1 has no name for `network`.
    public init(
        scheme: String = X402PaymentRequirements.exactScheme,
        network: X402Network,
        maxAmountRequired: UInt64,
        resource: String,
        description: String,
        mimeType: String,
        outputSchema: X402JSONValue? = nil,
        maxTimeoutSeconds: Int,
        asset: EVMAddress,
        payTo: EVMAddress,
        extra: [String: X402JSONValue]? = nil
    ) throws(X402Error) {
        guard network.v1Name != nil else {
            throw X402Error(.unsupportedNetwork, "x402 v1 has no name for network \(network.caip2)")
        }
        self.scheme = scheme
        self.network = network
        self.maxAmountRequired = maxAmountRequired
        self.resource = resource
        self.description = description
        self.mimeType = mimeType
        self.outputSchema = outputSchema
        self.maxTimeoutSeconds = maxTimeoutSeconds
        self.asset = asset
        self.payTo = payTo
        self.extra = extra
    }

    enum CodingKeys: String, CodingKey {
        case scheme, network, maxAmountRequired, resource, description, mimeType, outputSchema
        case maxTimeoutSeconds, asset, payTo, extra
    }

    /// Decodes and validates; a bad field throws `X402Error` naming it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        scheme = try container.decodeNonEmpty(forKey: .scheme)
        network = try container.decodeNetwork(forKey: .network, version: 1)
        maxAmountRequired = try container.decodeUnsignedString(forKey: .maxAmountRequired)
        resource = try container.decodeNonEmpty(forKey: .resource)
        description = try container.decode(String.self, forKey: .description)
        mimeType = try container.decode(String.self, forKey: .mimeType)
        outputSchema = try container.decodeIfPresent(X402JSONValue.self, forKey: .outputSchema)
        maxTimeoutSeconds = try container.decodeTimeout(forKey: .maxTimeoutSeconds)
        asset = try container.decodeAddress(forKey: .asset)
        payTo = try container.decodeAddress(forKey: .payTo)
        extra = try container.decodeIfPresent([String: X402JSONValue].self, forKey: .extra)
    }

    /// Encodes the wire form: amounts and times as digit strings, the version's network spelling.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(scheme, forKey: .scheme)
        try container.encode(network.v1Name ?? network.caip2, forKey: .network)
        try container.encode(String(maxAmountRequired), forKey: .maxAmountRequired)
        try container.encode(resource, forKey: .resource)
        try container.encode(description, forKey: .description)
        try container.encode(mimeType, forKey: .mimeType)
        try container.encodeIfPresent(outputSchema, forKey: .outputSchema)
        try container.encode(maxTimeoutSeconds, forKey: .maxTimeoutSeconds)
        try container.encode(asset.text, forKey: .asset)
        try container.encode(payTo.text, forKey: .payTo)
        try container.encodeIfPresent(extra, forKey: .extra)
    }
}

extension KeyedDecodingContainer {
    /// A network in the spelling `version` uses: CAIP-2 for v2, the v1 name for v1. The other
    /// spelling is refused, since a client must copy the server's requirement verbatim.
    func decodeNetwork(forKey key: Key, version: Int) throws -> X402Network {
        let text = try decode(String.self, forKey: key)
        guard let network = X402Network(text) else {
            throw X402Error(.unsupportedNetwork, "\(X402Coding.path(codingPath, key)): not an EVM network Tollgate knows")
        }
        let expected = version == 1 ? network.v1Name : network.caip2
        guard text == expected else {
            let form = version == 1 ? "a v1 network name such as base-sepolia" : "a CAIP-2 id such as eip155:84532"
            throw X402Error(.unsupportedNetwork, "\(X402Coding.path(codingPath, key)): x402 v\(version) expects \(form)")
        }
        return network
    }
}
