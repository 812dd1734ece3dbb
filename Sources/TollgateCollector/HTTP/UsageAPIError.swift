import Hummingbird

/// A usage API refusal: the HTTP status, a stable `error` code and a message for people.
struct UsageAPIError: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    static let unknownKey = UsageAPIError(.notFound, "unknown_key", "no key with that id or name")

    /// Any error a handler threw, as the API reports it (Redis and store errors as the admin API does).
    init(_ error: any Error) {
        switch error {
        case let error as UsageAPIError:
            self = error
        case UsageQueryError.badPeriod(let id):
            self.init(.badRequest, "bad_period", "period \(id) fits none of the key's metered features (ids look like d20261123, w2026W47, m202611)")
        case UsageQueryError.unknownPlan(let plan):
            self.init(.badRequest, "unknown_plan", "no plan named \"\(plan)\"")
        case UsageQueryError.ambiguousName(let name, let count):
            self.init(.conflict, "ambiguous_name", "\(count) keys are named \"\(name)\"; use the key id")
        default:
            let admin = AdminError(error)
            self.init(admin.status, admin.code, admin.message)
        }
    }

    var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if self.status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"tollgate-usage\"" }
        return AdminJSON.response(self.status, ["error": self.code, "message": self.message], headers: headers)
    }
}
