/// A payment network as x402 names it: CAIP-2 in v2 (`eip155:84532`), a short name in v1.
public struct X402Network: Hashable, Sendable, CustomStringConvertible {
    /// The CAIP-2 chain id, e.g. `eip155:84532`.
    public let caip2: String

    /// v1 names of the EVM networks x402 v1 knows, keyed by CAIP-2 id.
    static let v1Names: [String: String] = [
        "eip155:8453": "base",
        "eip155:84532": "base-sepolia",
        "eip155:43114": "avalanche",
        "eip155:43113": "avalanche-fuji",
        "eip155:137": "polygon",
        "eip155:80002": "polygon-amoy",
        "eip155:1": "ethereum",
        "eip155:11155111": "sepolia",
    ]

    /// Parses either form: `eip155:<chain id>` or a known v1 name such as `base-sepolia`.
    public init?(_ text: String) {
        if let (caip2, _) = Self.v1Names.first(where: { $0.value == text }) {
            self.caip2 = caip2
            return
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == "eip155", !parts[1].isEmpty, parts[1].count <= 20,
              parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), parts[1].first != "0"
        else { return nil }
        self.caip2 = text
    }

    /// The v1 name, when v1 has one for this chain (v1 clients cannot pay on other chains).
    public var v1Name: String? { Self.v1Names[caip2] }

    public var description: String { caip2 }
}

/// An EVM address: `0x` and 40 hex digits, kept as written (checksummed case is preserved).
public struct EVMAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address as configured.
    public let text: String

    /// Validates the shape; returns nil for anything that is not `0x` + 40 hex digits.
    public init?(_ text: String) {
        guard text.utf8.count == 42, text.hasPrefix("0x") || text.hasPrefix("0X"),
              text.utf8.dropFirst(2).allSatisfy({ $0.isHexDigit })
        else { return nil }
        self.text = text
    }

    /// Addresses compare case-insensitively on chain; use this to match payTo and asset.
    public func matches(_ other: String) -> Bool { text.lowercased() == other.lowercased() }

    public var description: String { text }
}

extension UInt8 {
    var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}
