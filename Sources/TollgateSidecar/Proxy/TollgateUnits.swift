/// Units an upstream reports for one call in the `Tollgate-Units` response header.
///
/// Syntax (strict): `name=value` entries separated by commas, optional spaces or tabs around them;
/// a name is 1...64 bytes of `[a-z0-9_]` starting with a letter; a value is 1...18 decimal digits;
/// at most 16 entries, no name twice. Anything else is refused whole: the proxy ignores the header,
/// counts a metric, and meters the call as if no units were reported.
///
/// ```
/// Tollgate-Units: tokens=532, compute_ms=12
/// ```
public struct TollgateUnits: Sendable, Hashable {
    /// The header's name.
    public static let headerName = "Tollgate-Units"
    /// Most entries one header may carry.
    public static let maxEntries = 16
    /// Longest unit name, in bytes.
    public static let maxNameBytes = 64
    /// Most digits of a value (keeps every value below 10^18, far from overflow when summed).
    public static let maxValueDigits = 18

    /// The entries in header order.
    public private(set) var entries: [(name: String, value: UInt64)]

    /// Parses one or more header values (several `Tollgate-Units` lines are one list); nil when any is malformed.
    public init?<Values: Sequence>(headerValues: Values) where Values.Element == String {
        self.entries = []
        for value in headerValues {
            var value = value
            guard value.withUTF8({ Self.parse($0, into: &self.entries) }) else { return nil }
        }
        if self.entries.isEmpty { return nil }
    }

    /// The value reported for `name`, if any.
    public func value(for name: String) -> UInt64? {
        for entry in self.entries where entry.name == name { return entry.value }
        return nil
    }

    /// Units for `feature` (its entry, else 1 per call) and every other entry as extra units.
    public func split(for feature: String) -> (units: UInt64, extra: [String: UInt64]) {
        var units: UInt64 = 1
        var extra: [String: UInt64] = [:]
        for entry in self.entries {
            if entry.name == feature { units = entry.value } else { extra[entry.name] = entry.value }
        }
        return (units, extra)
    }

    /// Equality by entries.
    public static func == (lhs: TollgateUnits, rhs: TollgateUnits) -> Bool {
        lhs.entries.elementsEqual(rhs.entries) { $0.name == $1.name && $0.value == $1.value }
    }

    /// Hashes the entries.
    public func hash(into hasher: inout Hasher) {
        for entry in self.entries {
            hasher.combine(entry.name)
            hasher.combine(entry.value)
        }
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>, into entries: inout [(name: String, value: UInt64)]) -> Bool {
        var i = 0
        let n = bytes.count
        func skipSpace() { while i < n, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 } }
        while true {
            skipSpace()
            // name
            let nameStart = i
            guard i < n, (0x61...0x7A).contains(bytes[i]) else { return false }
            while i < n, Self.isNameByte(bytes[i]) { i += 1 }
            let nameEnd = i
            guard nameEnd - nameStart <= Self.maxNameBytes else { return false }
            skipSpace()
            guard i < n, bytes[i] == UInt8(ascii: "=") else { return false }
            i += 1
            skipSpace()
            // value
            var value: UInt64 = 0
            let digitsStart = i
            while i < n, (0x30...0x39).contains(bytes[i]) {
                guard i - digitsStart < Self.maxValueDigits else { return false }
                value = value * 10 + UInt64(bytes[i] - 0x30)
                i += 1
            }
            guard i > digitsStart else { return false }
            let name = String(decoding: UnsafeBufferPointer(rebasing: bytes[nameStart..<nameEnd]), as: UTF8.self)
            guard entries.count < Self.maxEntries, !entries.contains(where: { $0.name == name }) else { return false }
            entries.append((name, value))
            skipSpace()
            if i == n { return true }
            guard bytes[i] == UInt8(ascii: ",") else { return false }
            i += 1
        }
    }

    @inline(__always)
    private static func isNameByte(_ b: UInt8) -> Bool {
        (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) || b == UInt8(ascii: "_")
    }
}
