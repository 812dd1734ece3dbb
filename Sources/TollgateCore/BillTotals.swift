/// The totals of a bill: overage units and charges over its lines, and payments received, kept
/// apart (payments are money already collected, not a credit against the overage).
///
/// Sums are checked: one that passes `UInt64.max` saturates and sets `overflow` rather than wrap.
/// ```swift
/// var totals = BillTotals()
/// for line in bills { totals.add(line) }
/// totals.overageCharge   // atomic units of the asset
/// ```
public struct BillTotals: Sendable, Hashable, Codable {
    /// Overage units over every line.
    public var overageUnits: UInt64 = 0
    /// Overage charges over every line, atomic units of the asset: what the estimate invoices.
    public var overageCharge: UInt64 = 0
    /// x402 payments settled in the bill's periods.
    public var payments: UInt64 = 0
    /// Their amount, atomic units of the asset.
    public var paymentsAmount: UInt64 = 0
    /// Whether any line overflowed or a sum passed `UInt64.max` (the sums are then saturated).
    public var overflow: Bool = false

    /// Empty totals.
    public init() {}

    /// Adds one line.
    public mutating func add(_ line: FeatureBill) {
        self.overageUnits = self.sum(self.overageUnits, line.overageUnits)
        self.overageCharge = self.sum(self.overageCharge, line.charge)
        self.payments = self.sum(self.payments, line.payments)
        self.paymentsAmount = self.sum(self.paymentsAmount, line.paymentsAmount)
        if line.overflow { self.overflow = true }
    }

    private mutating func sum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (total, overflow) = a.addingReportingOverflow(b)
        if overflow { self.overflow = true }
        return overflow ? .max : total
    }
}
