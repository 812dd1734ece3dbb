/// The key id an anonymous caller is metered and limited under: `anon.<plan>.<client address>`.
///
/// A sidecar configured with an anonymous plan identifies a caller without an API key by its
/// client address. The id names the plan, so the collector can answer for it like any key (the
/// registry synthesises its entry from the plan, see `KeyRegistry.lookup`) and every sidecar
/// leases, counts and reports it the same way: the anonymous plan's quota holds fleet-wide per
/// client address.
///
/// The id can never be an API key's id (those are 64 hex digits, with no dot) and holds no byte a
/// Redis key or usage record forbids (`:`, `{`, `}`, space): an IPv6 address's colons become `-`,
/// which an IPv6 address never contains, and a zone (`%eth0`) is dropped.
///
/// Threading: pure functions; call them anywhere.
public enum AnonymousKeyID {
    /// What every anonymous key id starts with.
    public static let prefix = "anon."

    /// The id of a caller at `clientAddress` on plan `plan` (a plan name: letters, digits, `-`, `_`).
    public static func make(plan: String, clientAddress: String) -> String {
        prefix + plan + "." + encode(clientAddress)
    }

    /// The plan and encoded client address of an anonymous key id; nil for any other id.
    public static func parse(_ keyID: String) -> (plan: String, client: String)? {
        guard keyID.hasPrefix(prefix) else { return nil }
        let rest = keyID.utf8.dropFirst(prefix.utf8.count)
        guard let dot = rest.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        let plan = Substring(rest[rest.startIndex..<dot])
        let client = Substring(rest[rest.index(after: dot)...])
        guard !plan.isEmpty, plan.utf8.count <= 64, plan.utf8.allSatisfy(isPlanByte),
              !client.isEmpty, client.utf8.count <= 64, client.utf8.allSatisfy(isAddressByte)
        else { return nil }
        return (String(plan), String(client))
    }

    /// The address as the id holds it: hex digits, dots and dashes only; anything else is `unknown`.
    static func encode(_ address: String) -> String {
        let withoutZone = address.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let encoded = String(withoutZone.map { $0 == ":" ? "-" : $0 })
        guard !encoded.isEmpty, encoded.utf8.count <= 64, encoded.utf8.allSatisfy(isAddressByte) else { return "unknown" }
        return encoded
    }

    private static func isPlanByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    private static func isAddressByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
    }
}
