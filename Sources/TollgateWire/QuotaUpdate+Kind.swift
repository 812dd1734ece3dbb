extension Tollgate_V1_QuotaUpdate.Kind {
    /// A short stable name for metrics and logs: `plan_changed`, `key_revoked`, ...
    public var name: String {
        switch self {
        case .unspecified: "unspecified"
        case .exhausted: "exhausted"
        case .credited: "credited"
        case .planChanged: "plan_changed"
        case .keyRevoked: "key_revoked"
        case .periodRolled: "period_rolled"
        case .keyAdded: "key_added"
        case .UNRECOGNIZED: "unrecognized"
        }
    }
}
