import Hummingbird

/// Usage API refusals are `AdminError`s (status, stable `error` code, message for people), answered
/// with the usage realm; this adds the refusals only usage queries make.
extension AdminError {
    static let unknownUsageKey = AdminError(.notFound, "unknown_key", "no key with that id or name")

    /// Any error a usage handler threw, as the API reports it (Redis and store errors as the admin API does).
    init(usage error: any Error) {
        switch error {
        case UsageQueryError.badPeriod(let id):
            self.init(.badRequest, "bad_period", "period \(id) fits none of the key's metered features (ids look like d20261123, w2026W47, m202611)")
        case UsageQueryError.unknownPlan(let plan):
            self.init(.badRequest, "unknown_plan", "no plan named \"\(plan)\"")
        case UsageQueryError.ambiguousName(let name, let count):
            self.init(.conflict, "ambiguous_name", "\(count) keys are named \"\(name)\"; use the key id")
        default:
            self.init(error)
        }
    }

    /// The answer to a usage query.
    var usageResponse: Response { self.response(realm: "tollgate-usage") }
}
