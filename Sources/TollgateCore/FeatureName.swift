/// The name of a plan feature, e.g. `api_call` (the default: one unit per request) or `tokens`.
public struct FeatureName: RawRepresentable, Sendable, Hashable, Comparable, Codable, CodingKeyRepresentable,
    ExpressibleByStringLiteral, CustomStringConvertible
{
    /// The name as written in config and in Redis keys.
    public var rawValue: String

    /// The feature every proxied request counts against unless configured otherwise.
    public static let apiCall: FeatureName = "api_call"

    /// Creates a name.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Creates a name.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// Creates a name from a literal.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// Lets `[FeatureName: ...]` encode as a keyed object rather than a flat array.
    public var codingKey: any CodingKey { FeatureCodingKey(stringValue: rawValue) }

    /// Decodes from a dictionary key.
    public init?<T: CodingKey>(codingKey: T) { self.rawValue = codingKey.stringValue }

    /// Orders names lexicographically (stable output for batches and headers).
    public static func < (lhs: FeatureName, rhs: FeatureName) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The name.
    public var description: String { rawValue }
}

private struct FeatureCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}
