/// The resource a v2 challenge or payment is about: `{url, description?, mimeType?}`.
public struct X402ResourceInfo: Sendable, Hashable, Codable {
    /// The resource's URL, as the client requested it.
    public var url: String
    /// What the payment buys, for people.
    public var description: String?
    /// The MIME type of the resource's response.
    public var mimeType: String?

    /// Creates resource information.
    public init(url: String, description: String? = nil, mimeType: String? = nil) {
        self.url = url
        self.description = description
        self.mimeType = mimeType
    }

    enum CodingKeys: String, CodingKey {
        case url, description, mimeType
    }

    /// Decodes and validates; a bad field throws `X402Error` naming it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        url = try container.decodeNonEmpty(forKey: .url)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        mimeType = try container.decodeIfPresent(String.self, forKey: .mimeType)
    }
}
