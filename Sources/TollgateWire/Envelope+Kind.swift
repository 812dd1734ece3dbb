extension Tollgate_V1_Envelope.OneOf_Body {
    /// A short stable name for the body kind, used as a metric label and in logs.
    public var kindName: String {
        switch self {
        case .hello: "hello"
        case .helloAck: "hello_ack"
        case .heartbeat: "heartbeat"
        case .usageBatch: "usage_batch"
        case .batchAck: "batch_ack"
        case .leaseRequest: "lease_request"
        case .leaseGrant: "lease_grant"
        case .leaseReturn: "lease_return"
        case .quotaUpdate: "quota_update"
        case .paymentRequest: "payment_request"
        case .paymentResult: "payment_result"
        case .keyLookup: "key_lookup"
        case .keyInfo: "key_info"
        case .error: "error"
        }
    }
}
