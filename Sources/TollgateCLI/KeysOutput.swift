import ArgumentParser
import Foundation

/// How `tollgate keys` prints the collector's answers for people.
enum KeysOutput {
    /// One row per key: name, id prefix, plan, revoked, source, limit overrides.
    static func table(_ keys: [[String: Any]]) {
        let rows = keys.map { key -> [String] in
            let overrides = key["overrides"] as? [String: Any] ?? [:]
            let limits = (overrides["limits"] as? [String: Any] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            return [
                "\(key["name"] ?? "")", String("\(key["id"] ?? "")".prefix(12)), "\(key["plan"] ?? "")",
                key["revoked"] as? Bool == true ? "yes" : "no", "\(key["source"] ?? "")", limits.isEmpty ? "-" : limits.joined(separator: ","),
            ]
        }
        printTable(["NAME", "ID", "PLAN", "REVOKED", "SOURCE", "LIMITS"], rows)
        if keys.isEmpty { print("(no keys)") }
    }

    /// A key's fields, then its effective features as a table.
    static func details(_ key: [String: Any]) {
        for field in ["name", "id", "plan", "revoked", "source", "stripe_customer", "version"] {
            var value = key[field].map { $0 is NSNull ? "-" : "\($0)" } ?? "-"
            if field == "revoked" { value = key[field] as? Bool == true ? "yes" : "no" }
            print("\(field.replacingOccurrences(of: "_", with: " ")): \(value)")
        }
        let effective = key["effective"] as? [String: Any] ?? [:]
        let features = (effective["features"] as? [String: Any] ?? [:]).sorted { $0.key < $1.key }
        let rows = features.map { name, value -> [String] in
            let feature = value as? [String: Any] ?? [:]
            if feature["kind"] as? String == "boolean" {
                return [name, "boolean", feature["enabled"] as? Bool == true ? "on" : "off", "", "", ""]
            }
            return [name, "metered", "\(feature["limit"] ?? "")", "\(feature["unit"] ?? "")", "\(feature["reset"] ?? "")", policy(feature["policy"])]
        }
        print("")
        printTable(["FEATURE", "KIND", "LIMIT", "UNIT", "RESET", "POLICY"], rows)
        if let rate = effective["rate"] as? [String: Any] {
            print("\nrate: \(rate["capacity"] ?? "?") burst, \(rate["refill"] ?? "?") per \(rate["per_seconds"] ?? "?") s")
        }
    }

    /// One line for a change: what was asked, whether it changed anything, and the version.
    static func change(_ answer: [String: Any], json: Bool, what: String) {
        if json { return printJSON(answer) }
        let key = answer["key"] as? [String: Any] ?? [:]
        let name = "\(key["name"] ?? key["id"] ?? "key")"
        if answer["changed"] as? Bool == true {
            print("\(name): \(what) (version \(answer["version"] ?? "?"))")
        } else {
            print("\(name): unchanged, already \(what) (version \(answer["version"] ?? "?"))")
        }
    }

    /// `feature=N` and `feature=none` arguments: N, or nil to clear.
    static func limits(_ arguments: [String]) throws -> [String: UInt64?] {
        var limits: [String: UInt64?] = [:]
        for argument in arguments {
            let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("expected feature=N or feature=none, got \"\(argument)\"") }
            if parts[1] == "none" || parts[1] == "null" {
                limits[parts[0]] = .some(nil)
            } else if let value = UInt64(parts[1].replacingOccurrences(of: "_", with: "")) {
                limits[parts[0]] = value
            } else {
                throw ValidationError("the limit of \(parts[0]) must be a non-negative integer or none, got \"\(parts[1])\"")
            }
        }
        return limits
    }

    private static func policy(_ value: Any?) -> String {
        if let name = value as? String { return name }
        return (value as? [String: Any])?.keys.first ?? "-"
    }

    /// Left-aligned columns separated by two spaces.
    static func printTable(_ header: [String], _ rows: [[String]]) {
        print(formatTable(header, rows))
    }

    /// The table `printTable` prints: left-aligned columns separated by two spaces, widths in
    /// characters (grapheme clusters), the last column unpadded.
    static func formatTable(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        return ([header] + rows).map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
