/// The x402 `payment-identifier` extension: an idempotency key a v2 client adds to its payment
/// (`extensions["payment-identifier"].info.id`), so a retry of the same payment gets the first
/// attempt's response instead of being run (or refused) again.
///
/// The server advertises it in every v2 challenge with `declaration` (`info.required: false` and
/// the JSON Schema of `info`, as the extension's specification and the official SDKs write it);
/// the client echoes that object and adds `info.id`. `extract` reads the id back and tells a
/// payment without one from one whose extension is malformed.
///
/// ```swift
/// switch X402PaymentIdentifier.extract(payment.extensions) {
/// case .absent: break                       // no idempotency: the payment is handled as always
/// case .id(let id): useAsIdempotencyKey(id)
/// case .invalid(let why): refuse(why)
/// }
/// ```
public enum X402PaymentIdentifier {
    /// The extension's name in `extensions`.
    public static let extensionName = "payment-identifier"
    /// Shortest id the specification allows.
    public static let minLength = 16
    /// Longest id the specification allows.
    public static let maxLength = 128

    /// What a payment's extensions say about its identifier.
    public enum Extracted: Sendable, Hashable {
        /// No extension, or the server's declaration echoed without an `id`.
        case absent
        /// A well-formed id.
        case id(String)
        /// The extension is there but unusable: why, for the client.
        case invalid(String)
    }

    /// The object advertised in a challenge's `extensions`: the id is optional.
    public static let declaration: X402JSONValue = .object([
        "info": .object(["required": .bool(false)]),
        "schema": .object([
            "$schema": .string("https://json-schema.org/draft/2020-12/schema"),
            "type": .string("object"),
            "properties": .object([
                "required": .object(["type": .string("boolean")]),
                "id": .object([
                    "type": .string("string"),
                    "minLength": .integer(Int64(minLength)),
                    "maxLength": .integer(Int64(maxLength)),
                    "pattern": .string("^[a-zA-Z0-9_-]+$"),
                ]),
            ]),
            "required": .array([.string("required")]),
        ]),
    ])

    /// Reads `extensions["payment-identifier"].info.id`. Anything but an object for the extension
    /// or its `info`, or an `id` that is not a string of 16 to 128 letters, digits, `-` and `_`, is
    /// `.invalid`; a missing or null `id` is `.absent`.
    public static func extract(_ extensions: [String: X402JSONValue]?) -> Extracted {
        guard let value = extensions?[extensionName] else { return .absent }
        guard case .object(let members) = value else { return .invalid("the payment-identifier extension is not an object") }
        guard let info = members["info"] else { return .absent }
        guard case .object(let fields) = info else { return .invalid("payment-identifier info is not an object") }
        switch fields["id"] {
        case nil, .null?:
            return .absent
        case .string(let id)?:
            guard isValid(id) else {
                return .invalid("payment-identifier id must be \(minLength) to \(maxLength) letters, digits, '-' or '_'")
            }
            return .id(id)
        case _?:
            return .invalid("payment-identifier id is not a string")
        }
    }

    /// Whether `id` has the form the specification gives: 16 to 128 of `[A-Za-z0-9_-]`.
    public static func isValid(_ id: String) -> Bool {
        let bytes = id.utf8
        guard bytes.count >= minLength, bytes.count <= maxLength else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "-"), UInt8(ascii: "_"): true
            default: false
            }
        }
    }
}
