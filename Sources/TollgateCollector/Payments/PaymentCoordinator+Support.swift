import Foundation
import Metrics
import TollgateCore
import TollgateX402

/// A payment header, decoded, with the exact JSON the client sent.
struct DecodedPayment: Sendable {
    var version: Int
    var json: [UInt8]
    var authorization: X402EIP3009Authorization
    /// v2: the requirement the client says it accepted.
    var accepted: X402PaymentRequirements?
    var network: X402Network
    /// v2: the payment-identifier extension's id, when a well-formed one came.
    var identifier: String?
    /// v2: why the payment-identifier extension could not be read, when it could not.
    var identifierProblem: String?
    /// v2: the resource the client says it paid for, when it says.
    var resourceURL: String?

    init(version: Int, json: [UInt8], authorization: X402EIP3009Authorization, accepted: X402PaymentRequirements?,
         network: X402Network, resourceURL: String?) {
        self.version = version
        self.json = json
        self.authorization = authorization
        self.accepted = accepted
        self.network = network
        self.resourceURL = resourceURL
    }
}

/// The server's own requirements for one price, in both versions, with the JSON a facilitator is
/// sent for each (encoded once: requirements are memoized per price and route).
struct ServerRequirements: Sendable {
    var v2: X402PaymentRequirements
    var v1: X402PaymentRequirementsV1?
    private let v2JSON: [UInt8]
    private let v1JSON: [UInt8]?

    init(v2: X402PaymentRequirements, v1: X402PaymentRequirementsV1?) {
        self.v2 = v2
        self.v1 = v1
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        self.v2JSON = (try? Array(encoder.encode(v2))) ?? []
        self.v1JSON = v1.map { (try? Array(encoder.encode($0))) ?? [] }
    }

    func json(for version: Int) -> [UInt8] {
        if version == 1, let v1JSON { return v1JSON }
        return v2JSON
    }
}

/// What the server's requirements depend on besides the settings: the price and the route.
struct RequirementsKey: Hashable, Sendable {
    var price: Money
    var route: String
}

/// A claim's id: 128 random bits as 32 lowercase hex digits.
func newClaimID() -> String {
    var generator = SystemRandomNumberGenerator()
    let high = String(generator.next() as UInt64, radix: 16)
    let low = String(generator.next() as UInt64, radix: 16)
    return String(repeating: "0", count: 16 - high.utf8.count) + high + String(repeating: "0", count: 16 - low.utf8.count) + low
}

/// Settlement metrics.
struct PaymentMetrics: Sendable {
    let verified = Counter(label: "tollgate_collector_payments_verified_total")
    let settled = Counter(label: "tollgate_collector_payments_settled_total")
    let amount = Counter(label: "tollgate_collector_payments_settled_atomic_total")
    /// Time spent waiting for the facilitator, by call: what a paid call's latency owes to it.
    let verifyTime = Timer(label: "tollgate_collector_facilitator_seconds", dimensions: [("op", "verify")])
    let settleTime = Timer(label: "tollgate_collector_facilitator_seconds", dimensions: [("op", "settle")])

    func failed(_ reason: String) {
        Counter(label: "tollgate_collector_payments_failed_total", dimensions: [("reason", reason)]).increment()
    }
}

/// The last `/supported` answer.
// @unchecked Sendable: `value` is only touched under `lock`.
final class SupportedBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<[String], FacilitatorClient.FailureText>?

    func set(_ value: Result<[String], FacilitatorClient.FailureText>) { lock.withLock { self.value = value } }

    func get() -> Result<[String], FacilitatorClient.FailureText>? { lock.withLock { value } }
}

extension Timer {
    /// Records the time since `start`.
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        self.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
