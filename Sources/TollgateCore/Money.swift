/// An exact amount of money: an integer count of the asset's atomic units (USDC: 6 decimals, so 1 USDC = 1 000 000).
///
/// Never floating point. Arithmetic either reports failure (`adding` returns nil) or saturates, by name.
public struct Money: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The amount in the asset's smallest unit.
    public var atomicUnits: UInt64
    /// The asset, e.g. `"USDC"`; nil means the deployment's configured default asset.
    public var asset: String?

    /// Creates an amount.
    public init(atomicUnits: UInt64, asset: String? = nil) {
        self.atomicUnits = atomicUnits
        self.asset = asset
    }

    /// Zero in `asset`.
    public static func zero(asset: String? = nil) -> Money { Money(atomicUnits: 0, asset: asset) }

    /// Whether the amount is zero.
    public var isZero: Bool { atomicUnits == 0 }

    /// The sum, or nil when the assets differ or the sum overflows UInt64.
    public func adding(_ other: Money) -> Money? {
        guard asset == other.asset else { return nil }
        let (sum, overflow) = atomicUnits.addingReportingOverflow(other.atomicUnits)
        return overflow ? nil : Money(atomicUnits: sum, asset: asset)
    }

    /// `atomicUnits` and the asset, e.g. `1500 USDC`.
    public var description: String { "\(atomicUnits)" + (asset.map { " " + $0 } ?? "") }
}

extension Money {
    /// Parses a decimal amount such as `"0.0015"` into atomic units of an asset with `decimals` decimals.
    ///
    /// Refuses signs, exponents, more fractional digits than the asset has, and overflow, because a
    /// price that silently rounds is a billing bug.
    public init(decimal text: String, decimals: Int, asset: String? = nil) throws {
        let bad = TollgateCoreError(.invalidAmount, "\"\(text)\" is not an amount with at most \(decimals) decimals")
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), (0...18).contains(decimals), !parts[0].isEmpty,
              let whole = Digits.parseUnsigned(parts[0]) else { throw bad }
        var fraction: UInt64 = 0
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].count <= decimals, let f = Digits.parseUnsigned(parts[1]) else { throw bad }
            fraction = f * Self.pow10(decimals - parts[1].count)
        }
        let (scaled, o1) = whole.multipliedReportingOverflow(by: Self.pow10(decimals))
        let (total, o2) = scaled.addingReportingOverflow(fraction)
        guard !o1, !o2 else { throw TollgateCoreError(.invalidAmount, "\"\(text)\" is too large") }
        self.init(atomicUnits: total, asset: asset)
    }

    /// The amount as a decimal string with exactly `decimals` fractional digits, e.g. `0.001500`.
    public func decimalString(decimals: Int) -> String {
        guard decimals > 0 else { return String(atomicUnits) }
        let scale = Self.pow10(decimals)
        let fraction = String(atomicUnits % scale)
        return "\(atomicUnits / scale)." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }

    static func pow10(_ n: Int) -> UInt64 {
        var r: UInt64 = 1
        for _ in 0..<n { r *= 10 }
        return r
    }
}

extension Digits {
    /// Parses up to 19 ASCII digits into a UInt64, or nil.
    static func parseUnsigned<S: StringProtocol>(_ text: S) -> UInt64? {
        guard !text.isEmpty, text.utf8.count <= 19 else { return nil }
        var value: UInt64 = 0
        for byte in text.utf8 {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            value = value * 10 + UInt64(byte - 0x30)
        }
        return value
    }
}
