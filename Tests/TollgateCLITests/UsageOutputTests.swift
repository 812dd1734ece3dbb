import Foundation
import Testing
@testable import TollgateCLI
@testable import TollgateCollector
import TollgateCore

/// `tollgate usage` rendering: bars, exact money, tables, and decoding what the collector sends.
@Suite struct UsageOutputTests {
    @Test func barsFillByFloorNeverHideUseAndMarkOverage() {
        #expect(UsageOutput.bar(used: 0, included: 1_000) == "[....................]")
        #expect(UsageOutput.bar(used: 1, included: 1_000) == "[#...................]")  // any use shows
        #expect(UsageOutput.bar(used: 500, included: 1_000) == "[##########..........]")
        #expect(UsageOutput.bar(used: 999, included: 1_000) == "[###################.]")  // not full below 100 %
        #expect(UsageOutput.bar(used: 1_000, included: 1_000) == "[####################]")
        #expect(UsageOutput.bar(used: 5_000, included: 1_000) == "[####################]!")
        #expect(UsageOutput.bar(used: 0, included: 0) == "[....................]")
        #expect(UsageOutput.bar(used: 3, included: 0) == "[####################]!")
        #expect(UsageOutput.bar(used: 5, included: 10, width: 4) == "[##..]")
        #expect(UsageOutput.bar(used: 1, included: 1, width: 0) == "[]")
        // Huge counts: no overflow in used × width.
        #expect(UsageOutput.bar(used: UInt64.max - 1, included: UInt64.max) == "[###################.]")
        #expect(UsageOutput.bar(used: UInt64.max / 2, included: UInt64.max) == "[#########...........]")
    }

    @Test func moneyIsFormattedFromIntegersExactly() {
        #expect(UsageOutput.money(4_000_000, decimals: 6) == "4.000000")
        #expect(UsageOutput.money(1_500, decimals: 6) == "0.001500")
        #expect(UsageOutput.money(0, decimals: 6) == "0.000000")
        #expect(UsageOutput.money(7, decimals: 0) == "7")
        #expect(UsageOutput.money(UInt64.max, decimals: 6) == "18446744073709.551615")
        // More decimals than a UInt64 has digits (the config allows up to 36): still exact.
        #expect(UsageOutput.money(UInt64.max, decimals: 30) == "0.000000000018446744073709551615")
        #expect(UsageOutput.money(5, decimals: 99) == "5 atomic")
        #expect(UsageOutput.money(5, decimals: -1) == "5 atomic")
        #expect(UsageOutput.money(20_000, BillingCurrency(name: "USDC")) == "0.020000 USDC")
        #expect(UsageOutput.count(0) == "0" && UsageOutput.count(999) == "999" && UsageOutput.count(1_000) == "1,000")
        #expect(UsageOutput.count(UInt64.max) == "18,446,744,073,709,551,615")
    }

    @Test func theReportTableShowsBarsChargesPaymentsAndTotals() throws {
        let (report, bill) = try Self.roundTrip(Self.report)
        let text = UsageOutput.report(report, bill: bill)
        let expected = """
            overage  (id 0123456789ab…, plan metered)
            as of 2026-11-23T10:00:00Z, current periods; amounts in USDC (0x036C…, 6 decimals)

            FEATURE   PERIOD     POLICY            USED / INCLUDED  USAGE                               OVERAGE  CHARGE               PAYMENTS
            api_call  d20261123  overage           5,000 / 1,000    [####################]! 500% ALERT  4,000    0.500000 USDC (cap)  -
            tokens    m202611    payment_required  850 / 1,000      [#################...] 85% warn     0        0.000000 USDC        2: 0.020000 USDC
            features: export off

            bill estimate: overage 0.500000 USDC for 4,000 units
            payments received: 2 for 0.020000 USDC (listed apart, not netted)
            """
        #expect(text == expected, "\n\(text)")
    }

    @Test func theTopTableListsEachKeysFullestFeature() throws {
        let (report, _) = try Self.roundTrip(Self.report)
        var quiet = report
        quiet.key = UsageReport.Key(id: String(repeating: "f", count: 64), name: "quiet", plan: "free", revoked: true)
        quiet.features = [Self.metered("api_call", used: 10, limit: 1_000, policy: .block)]
        let overview = UsageOverview(
            plan: nil, over: 0, limit: 2, keysScanned: 3, matched: 3,
            keys: [UsageOverview.KeySummary(report: report), UsageOverview.KeySummary(report: quiet)],
            currency: BillingCurrency(asset: nil, name: nil, decimals: 6), asOf: "2026-11-23T10:00:00Z"
        )
        let decoded = try Self.decode(UsageOverview.self, Self.encode(overview))
        #expect(decoded == overview)
        let text = UsageOutput.top(decoded)
        let expected = """
            KEY              PLAN     FEATURE   USED / INCLUDED  USAGE                    %     LEVEL  OVERAGE CHARGE
            overage          metered  api_call  5,000 / 1,000    [####################]!  500%  alert  0.500000
            quiet (revoked)  free     api_call  10 / 1,000       [#...................]   1%    ok     0.000000

            3 of 3 keys at or over 0%, showing the first 2; charges in atomic units (6 decimals), as of 2026-11-23T10:00:00Z
            """
        #expect(text == expected, "\n\(text)")
    }

    @Test func anEmptyOverviewSaysSo() {
        let overview = UsageOverview(plan: "pro", over: 80, limit: 20, keysScanned: 4, matched: 0, keys: [],
                                     currency: BillingCurrency(), asOf: "2026-11-23T10:00:00Z")
        #expect(UsageOutput.top(overview).hasPrefix("(no keys)\n\n0 of 4 keys at or over 80% on plan pro;"))
    }

    // MARK: fixtures

    static let report: UsageReport = {
        var features = [
            metered("api_call", used: 5_000, limit: 1_000, policy: .overage(
                price: UnitPrice(price: Money(atomicUnits: 1_000)), spendCap: Money(atomicUnits: 500_000), fallback: .block)),
            metered("tokens", used: 850, limit: 1_000, period: "m202611", policy: .paymentRequired(price: Money(atomicUnits: 10_000), buys: .units(100)),
                    payments: (2, 20_000)),
        ]
        features.append(UsageReport.Feature(feature: "export", kind: "boolean", enabled: false))
        return UsageReport(
            key: UsageReport.Key(id: "0123456789abcdef" + String(repeating: "0", count: 48), name: "overage", plan: "metered", revoked: false),
            period: nil, features: features, payments: UsageReport.Payments(count: 2, amount: 20_000),
            currency: BillingCurrency(asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", name: "USDC", decimals: 6),
            tier: nil, asOf: "2026-11-23T10:00:00Z"
        )
    }()

    static func metered(
        _ name: String, used: UInt64, limit: UInt64, period: String = "d20261123", policy: OverQuotaPolicy, payments: (UInt64, UInt64) = (0, 0)
    ) -> UsageReport.Feature {
        var feature = UsageReport.Feature(
            feature: name, kind: "metered", period: UsageReport.PeriodInfo(id: period, start: "", end: ""), unit: "call",
            used: used, limit: limit, policy: policy.name, mode: "strict", calls: used
        )
        let bill = FeatureBill(limit: limit, credits: 0, used: used, policy: policy, payments: payments.0, paymentsAmount: payments.1)
        feature.remaining = bill.remaining
        feature.apply(bill, policy: policy)
        return feature
    }

    /// The report and its bill as the CLI sees them: encoded as the collector does, decoded as the client does.
    static func roundTrip(_ report: UsageReport) throws -> (UsageReport, UsageBill) {
        let plan = Plan(name: "metered", features: [
            "api_call": .metered(MeteredFeature(limit: 1_000, reset: .day, policy: .overage(
                price: UnitPrice(price: Money(atomicUnits: 1_000)), spendCap: Money(atomicUnits: 500_000), fallback: .block))),
            "tokens": .metered(MeteredFeature(limit: 1_000, reset: .month, policy: .paymentRequired(price: Money(atomicUnits: 10_000), buys: .units(100)))),
            "export": .boolean(enabled: false),
        ]).resolved()
        let bill = report.bill(plan: plan)
        let decodedReport = try decode(UsageReport.self, encode(report))
        let decodedBill = try decode(UsageBill.self, encode(bill))
        #expect(decodedReport == report && decodedBill == bill)
        return (decodedReport, decodedBill)
    }

    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(value)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(type, from: data)
    }
}
