import ArgumentParser
import TollgateCollector

/// `tollgate usage ...`: a key's usage and bill estimate, or the keys nearest to their limit, from
/// a collector's usage API (through the same `CollectorClient` as `tollgate keys`).
///
/// ```
/// tollgate usage acme                      # per feature: bar, overage, charge, payments; bill totals
/// tollgate usage acme --period d20261122   # a past period
/// tollgate usage --top --over 80 --plan pro
/// tollgate usage acme --json               # {"usage": <GET /v1/usage/acme>, "bill": <.../bill>}
/// ```
struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Show a key's usage and bill estimate, or (--top) the keys nearest to or over their limit.",
        discussion: """
            A key is named by its id (64 hex digits) or its name. The token, when the collector wants one, comes \
            from --token, $TOLLGATE_USAGE_TOKEN or $TOLLGATE_ADMIN_TOKEN. Amounts are exact: atomic units of the \
            asset formatted with its decimals.
            """
    )

    @OptionGroup var options: CollectorOptions
    @Argument(help: "The key's id or name (leave out with --top).") var key: String?
    @Option(help: ArgumentHelp("A past period id, e.g. d20261122, w2026W47, m202610 (default: the current periods).", valueName: "id"))
    var period: String?
    @Flag(help: "List the keys nearest to or over their limit, fullest first.") var top = false
    @Option(help: ArgumentHelp("With --top: only keys at least this percent used (default 0: all).", valueName: "percent"))
    var over: UInt64?
    @Option(help: ArgumentHelp("With --top: only keys on this plan.", valueName: "plan")) var plan: String?
    @Option(help: ArgumentHelp("With --top: at most this many keys, 1 to 1000 (default 20).", valueName: "n")) var limit: Int?

    func validate() throws {
        if top {
            guard key == nil else { throw ValidationError("give a key or --top, not both") }
            guard period == nil else { throw ValidationError("--period applies to one key; --top shows the current periods") }
            if let limit, !(1...1_000).contains(limit) { throw ValidationError("--limit must be from 1 to 1000, got \(limit)") }
        } else {
            guard key != nil else { throw ValidationError("give a key (id or name), or --top") }
            guard over == nil, plan == nil, limit == nil else { throw ValidationError("--over, --plan and --limit go with --top") }
        }
    }

    func run() async throws {
        let client = try CollectorClient(options, tokenVariables: ["TOLLGATE_USAGE_TOKEN", "TOLLGATE_ADMIN_TOKEN"])
        if top {
            var query: [(String, String)] = [("limit", String(limit ?? 20))]
            if let over { query.append(("over", String(over))) }
            if let plan { query.append(("plan", plan)) }
            let (overview, json) = try await client.fetch(UsageOverview.self, "/v1/usage", query: query)
            if options.json { return printJSON(json) }
            print(UsageOutput.top(overview))
            return
        }
        let path = "/v1/usage/\(CollectorClient.segment(key ?? ""))"
        let query = period.map { [("period", $0)] } ?? []
        let (report, reportJSON) = try await client.fetch(UsageReport.self, path, query: query)
        let (bill, billJSON) = try await client.fetch(UsageBill.self, path + "/bill", query: query)
        if options.json { return printJSON(["usage": reportJSON, "bill": billJSON]) }
        print(UsageOutput.report(report, bill: bill))
    }
}
