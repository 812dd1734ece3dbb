import TollgateWire

/// Sends x402 payment steps to the collectors and waits for their answer.
///
/// Threading: `Sendable`; calls are async and ride the request channel's DEALER thread.
public struct PaymentChannel: Sendable {
    private let transport: any LeaseTransport
    private let holder: @Sendable () -> (sidecarID: String, bootEpoch: UInt64)
    private let timeout: Duration
    /// Largest paid response (status, headers and body) sent with a SETTLE to be kept under its
    /// payment-identifier id (`x402.idempotency.max_response_bytes`); a larger one is not sent.
    public let keptResponseLimit: Int

    /// A channel over `transport` for the sidecar `holder` names (id and boot epoch, as its usage
    /// batches carry them); a step gets `timeout` (the facilitator's timeout plus a margin).
    public init(
        transport: any LeaseTransport, timeout: Duration = .seconds(15), keptResponseLimit: Int = 256 * 1_024,
        holder: @escaping @Sendable () -> (sidecarID: String, bootEpoch: UInt64)
    ) {
        self.transport = transport
        self.holder = holder
        self.timeout = timeout
        self.keptResponseLimit = keptResponseLimit
    }

    /// Runs one step and calls `completion` with the result (nil when no collector answered in
    /// time) on the transport's thread: quick work only, such as completing an event loop's promise.
    public func send(_ request: Tollgate_V1_PaymentRequest, completion: @escaping @Sendable (Tollgate_V1_PaymentResult?) -> Void) {
        var request = request
        (request.sidecarID, request.bootEpoch) = holder()
        transport.request(.paymentRequest(request), timeout: timeout) { reply in
            guard case .success(let envelope) = reply, case .paymentResult(let result)? = envelope.body else {
                completion(nil)
                return
            }
            completion(result)
        }
    }

    /// Sends a step without waiting (releasing a claim).
    public func post(_ request: Tollgate_V1_PaymentRequest) {
        var request = request
        (request.sidecarID, request.bootEpoch) = holder()
        transport.send(.paymentRequest(request))
    }
}
