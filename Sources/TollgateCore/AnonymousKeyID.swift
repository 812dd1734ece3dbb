#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
/// An IPv6 client is its /64 (the interface bits zeroed, e.g. `anon.public.2001-db8-1-2--`): one
/// host usually holds a whole /64, so counting single addresses would give it 2^64 quotas and let
/// it fill a sidecar's key cache. An IPv4-mapped address (`::ffff:203.0.113.9`) is its IPv4 address.
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
        let canonical = withoutZone.contains(":") ? (ipv6Principal(withoutZone) ?? "") : withoutZone
        let encoded = String(canonical.map { $0 == ":" ? "-" : $0 })
        guard !encoded.isEmpty, encoded.utf8.count <= 64, encoded.utf8.allSatisfy(isAddressByte) else { return "unknown" }
        return encoded
    }

    /// The principal an IPv6 address stands for: its /64 prefix, or the IPv4 address it maps;
    /// nil when it does not parse.
    static func ipv6Principal(_ address: String) -> String? {
        var bytes = [UInt8](repeating: 0, count: 16)
        guard bytes.withUnsafeMutableBytes({ inet_pton(AF_INET6, address, $0.baseAddress) }) == 1 else { return nil }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return "\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])"
        }
        for index in 8..<16 { bytes[index] = 0 }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = bytes.withUnsafeBytes { raw in
            text.withUnsafeMutableBufferPointer { inet_ntop(AF_INET6, raw.baseAddress, $0.baseAddress, socklen_t(INET6_ADDRSTRLEN)) }
        }
        guard written != nil else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
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
