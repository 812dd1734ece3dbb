import TollgateCollector
import TollgateCore

/// How `tollgate usage` prints the collector's usage reports, bills and overviews for people.
///
/// Pure: every function returns the text, so tests check it without a terminal. Money is formatted
/// from integer atomic units with the asset's decimals by moving a decimal point in the digit
/// string: no floating point, no rounding, any number of decimals.
enum UsageOutput {
    /// Width of a usage bar, in cells.
    static let barWidth = 20

    /// One key's usage and bill: a header, a table with a bar per metered feature, then the totals.
    static func report(_ report: UsageReport, bill: UsageBill) -> String {
        let currency = report.currency
        var lines: [String] = []
        let revoked = report.key.revoked ? ", REVOKED" : ""
        lines.append("\(report.key.name)  (id \(report.key.id.prefix(12))…, plan \(report.key.plan)\(revoked))")
        lines.append("as of \(report.asOf)" + (report.period.map { ", period \($0)" } ?? ", current periods") + "; amounts in \(Self.currencyName(currency))")
        lines.append("")
        let rows = bill.lines.map { line -> [String] in
            let mark = switch line.level {
            case .ok: ""
            case .warning: " warn"
            case .alert: " ALERT"
            }
            return [
                line.feature, line.period?.id ?? "-", line.policy ?? "-",
                "\(Self.count(line.used)) / \(Self.count(line.included))",
                Self.bar(used: line.used, included: line.included) + " \(line.percentUsed)%" + mark,
                Self.count(line.overageUnits), Self.money(line.charge, currency) + (line.capReached == true ? " (cap)" : ""),
                line.payments == 0 ? "-" : "\(line.payments): \(Self.money(line.paymentsAmount, currency))",
            ]
        }
        if rows.isEmpty {
            lines.append("(no metered features)")
        } else {
            lines.append(KeysOutput.formatTable(["FEATURE", "PERIOD", "POLICY", "USED / INCLUDED", "USAGE", "OVERAGE", "CHARGE", "PAYMENTS"], rows))
        }
        let switches = report.features.filter { $0.kind == "boolean" }.map { "\($0.feature) \($0.enabled == true ? "on" : "off")" }
        if !switches.isEmpty { lines.append("features: " + switches.joined(separator: ", ")) }
        if let tier = report.tier {
            lines.append("rate tier \(tier.name): burst \(Self.count(tier.capacity)), \(Self.count(tier.refillTokens)) per \(tier.refillPerSeconds) s")
        }
        lines.append("")
        let totals = bill.totals
        lines.append("bill estimate: overage \(Self.money(totals.overageCharge, currency)) for \(Self.count(totals.overageUnits)) units"
            + (totals.overflow ? " (OVERFLOW: saturated, see --json)" : ""))
        lines.append("payments received: \(totals.payments) for \(Self.money(totals.paymentsAmount, currency)) (listed apart, not netted)")
        return lines.joined(separator: "\n")
    }

    /// The keys nearest to or over their limit: one row per key, its fullest feature as a bar.
    static func top(_ overview: UsageOverview) -> String {
        let rows = overview.keys.map { key -> [String] in
            let fullest = key.features.first { $0.feature == key.fullest }
            return [
                key.key.name + (key.key.revoked ? " (revoked)" : ""), key.key.plan, fullest?.feature ?? "-",
                fullest.map { "\(Self.count($0.used)) / \(Self.count($0.included))" } ?? "-",
                fullest.map { Self.bar(used: $0.used, included: $0.included) } ?? Self.bar(used: 0, included: 0),
                "\(key.percentUsed)%", key.level.rawValue, Self.money(key.overageCharge, overview.currency),
            ]
        }
        var lines: [String] = []
        if rows.isEmpty {
            lines.append("(no keys)")
        } else {
            lines.append(KeysOutput.formatTable(["KEY", "PLAN", "FEATURE", "USED / INCLUDED", "USAGE", "%", "LEVEL", "OVERAGE CHARGE"], rows))
        }
        let shown = overview.keys.count < overview.matched ? ", showing the first \(overview.keys.count)" : ""
        lines.append("")
        lines.append("\(overview.matched) of \(overview.keysScanned) keys at or over \(overview.over)%"
            + (overview.plan.map { " on plan \($0)" } ?? "") + shown
            + "; charges in \(Self.currencyName(overview.currency)), as of \(overview.asOf)")
        return lines.joined(separator: "\n")
    }

    /// A bar of `barWidth` cells: `#` for used, `.` for what is left; `!` after it when used passes
    /// included. Cells are `floor(used × width / included)`, at least one once anything is used and
    /// never all of them below 100 %, so the bar never hides use nor looks full before it is.
    static func bar(used: UInt64, included: UInt64, width: Int = barWidth) -> String {
        guard width > 0 else { return "[]" }
        let cells = UInt64(width)
        let filled: UInt64
        if included == 0 {
            filled = used > 0 ? cells : 0
        } else if used >= included {
            filled = cells
        } else {
            // used < included, so the quotient is below `cells` and fits: no overflow however large.
            let (quotient, _) = included.dividingFullWidth(used.multipliedFullWidth(by: cells))
            filled = min(max(quotient, used > 0 ? 1 : 0), cells - 1)
        }
        let full = Int(filled)
        return "[" + String(repeating: "#", count: full) + String(repeating: ".", count: width - full) + "]" + (used > included ? "!" : "")
    }

    /// `atomic` atomic units as a decimal amount of an asset with `decimals` decimals, e.g.
    /// `money(4_000_000, 6)` is `4.000000`; exact for any value. Decimals outside 0...36 (what the
    /// config accepts) are not trusted: the amount is shown in atomic units.
    static func money(_ atomic: UInt64, decimals: Int) -> String {
        let digits = String(atomic)
        guard (0...36).contains(decimals) else { return digits + " atomic" }
        guard decimals > 0 else { return digits }
        let padded = String(repeating: "0", count: max(0, decimals + 1 - digits.count)) + digits
        let point = padded.index(padded.endIndex, offsetBy: -decimals)
        return String(padded[..<point]) + "." + String(padded[point...])
    }

    /// `money(_:decimals:)` in `currency`, with its name when known: `4.000000 USDC`.
    static func money(_ atomic: UInt64, _ currency: BillingCurrency) -> String {
        Self.money(atomic, decimals: currency.decimals) + (currency.name.map { " " + $0 } ?? "")
    }

    /// A count with thousands separators: `1,234,567`.
    static func count(_ value: UInt64) -> String {
        let digits = Array(String(value))
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return out
    }

    /// `USDC (0x036C…, 6 decimals)`, or `atomic units (6 decimals)` for an unnamed asset.
    static func currencyName(_ currency: BillingCurrency) -> String {
        let asset = currency.asset.map { "\($0.prefix(6))…, " } ?? ""
        return "\(currency.name ?? "atomic units") (\(asset)\(currency.decimals) decimals)"
    }
}
