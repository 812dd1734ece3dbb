/// A usage batch as plain values, written to and read from its `Envelope` bytes directly.
///
/// The wire format is exactly `tollgate.v1.UsageBatch` inside an `Envelope`; the generated
/// `Tollgate_V1_UsageBatch` decodes these bytes and these codecs read its bytes. They exist for
/// speed only: a batch carries up to 10,000 aggregates, and the generated messages box every
/// aggregate on the heap, which made encoding and decoding the largest cost of the uplink and the
/// collector threads. Other message kinds keep using the generated code.
///
/// ```swift
/// let bytes = try codec.encode(frame, correlationID: 7, sentAtUnixMs: now)
/// if case .usageBatch(let batch, _, _) = try codec.decodeFrame(bytes) { apply(batch) }
/// ```
public struct UsageBatchFrame: Sendable, Hashable {
    /// `sidecar_id`.
    public var sidecarID: String
    /// `boot_epoch`.
    public var bootEpoch: UInt64
    /// `sequence`.
    public var sequence: UInt64
    /// `created_at_unix_ms`.
    public var createdAtUnixMs: Int64
    /// `aggregates`.
    public var aggregates: [Aggregate]

    /// A batch with the given fields.
    public init(sidecarID: String, bootEpoch: UInt64, sequence: UInt64, createdAtUnixMs: Int64 = 0, aggregates: [Aggregate] = []) {
        self.sidecarID = sidecarID
        self.bootEpoch = bootEpoch
        self.sequence = sequence
        self.createdAtUnixMs = createdAtUnixMs
        self.aggregates = aggregates
    }

    /// One `tollgate.v1.UsageAggregate`; `status` is written even when all its counts are zero,
    /// as the sidecar always sets it.
    public struct Aggregate: Sendable, Hashable {
        /// `key_id`.
        public var keyID: String
        /// `feature`.
        public var feature: String
        /// `period_id`.
        public var periodID: String
        /// `calls`.
        public var calls: UInt64 = 0
        /// `units`.
        public var units: UInt64 = 0
        /// `status.informational` (1xx).
        public var informational: UInt64 = 0
        /// `status.success` (2xx).
        public var success: UInt64 = 0
        /// `status.redirection` (3xx).
        public var redirection: UInt64 = 0
        /// `status.client_error` (4xx).
        public var clientError: UInt64 = 0
        /// `status.server_error` (5xx).
        public var serverError: UInt64 = 0
        /// `request_bytes`.
        public var requestBytes: UInt64 = 0
        /// `response_bytes`.
        public var responseBytes: UInt64 = 0
        /// `latency_sum_us`.
        public var latencySumUs: UInt64 = 0
        /// `latency_max_us`.
        public var latencyMaxUs: UInt64 = 0
        /// `extra_units`.
        public var extraUnits: [String: UInt64] = [:]
        /// `overage_units`.
        public var overageUnits: UInt64 = 0
        /// `overage_charge_atomic`.
        public var overageChargeAtomic: UInt64 = 0
        /// `lease_id`.
        public var leaseID: String = ""
        /// `leased_units`.
        public var leasedUnits: UInt64 = 0

        /// An aggregate of one key, feature and period with all counts zero.
        public init(keyID: String, feature: String, periodID: String) {
            self.keyID = keyID
            self.feature = feature
            self.periodID = periodID
        }
    }
}

extension WireCodec {
    /// Serialises `frame` as an `Envelope` with a `usage_batch` body (protocol version stamped),
    /// refusing it when it exceeds the frame limit.
    public func encode(_ frame: UsageBatchFrame, correlationID: UInt64 = 0, sentAtUnixMs: Int64 = 0) throws(WireError) -> [UInt8] {
        var body = ProtobufWriter()
        body.string(1, frame.sidecarID)
        body.varint(2, frame.bootEpoch)
        body.varint(3, frame.sequence)
        body.varint(4, UInt64(bitPattern: frame.createdAtUnixMs))
        var scratch = ProtobufWriter()
        for aggregate in frame.aggregates {
            scratch.bytes.removeAll(keepingCapacity: true)
            scratch.aggregate(aggregate)
            body.message(5, scratch.bytes)
        }
        var envelope = ProtobufWriter()
        envelope.bytes.reserveCapacity(body.bytes.count + 32)
        envelope.varint(1, UInt64(Self.protocolVersion))
        envelope.varint(2, correlationID)
        envelope.varint(3, UInt64(bitPattern: sentAtUnixMs))
        envelope.message(Self.usageBatchField, body.bytes)
        guard envelope.bytes.count <= self.maxFrameBytes else {
            throw WireError(.oversized, "envelope of \(envelope.bytes.count) bytes exceeds the \(self.maxFrameBytes)-byte limit")
        }
        return envelope.bytes
    }

    /// `Envelope.usage_batch`'s field number.
    static let usageBatchField: UInt64 = 20
}

/// Appends protobuf fields to a byte buffer; default values (0, "") are left out, as proto3 does.
struct ProtobufWriter {
    var bytes: [UInt8] = []

    mutating func rawVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            self.bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        self.bytes.append(UInt8(rest))
    }

    static func varintSize(_ value: UInt64) -> UInt64 {
        var size: UInt64 = 1
        var rest = value >> 7
        while rest != 0 {
            size += 1
            rest >>= 7
        }
        return size
    }

    mutating func tag(_ field: UInt64, _ wireType: UInt64) {
        self.rawVarint(field << 3 | wireType)
    }

    mutating func varint(_ field: UInt64, _ value: UInt64) {
        guard value != 0 else { return }
        self.tag(field, 0)
        self.rawVarint(value)
    }

    mutating func string(_ field: UInt64, _ value: String, always: Bool = false) {
        guard always || !value.isEmpty else { return }
        self.tag(field, 2)
        self.rawVarint(UInt64(value.utf8.count))
        self.bytes.append(contentsOf: value.utf8)
    }

    mutating func message(_ field: UInt64, _ encoded: [UInt8]) {
        self.tag(field, 2)
        self.rawVarint(UInt64(encoded.count))
        self.bytes.append(contentsOf: encoded)
    }

    /// The fields of one `UsageAggregate`, in field-number order as SwiftProtobuf writes them.
    mutating func aggregate(_ a: UsageBatchFrame.Aggregate) {
        self.string(1, a.keyID)
        self.string(2, a.feature)
        self.string(3, a.periodID)
        self.varint(4, a.calls)
        self.varint(5, a.units)
        // StatusCounts inline: its length first (a one-byte tag per non-zero count), then the counts.
        let counts = [a.informational, a.success, a.redirection, a.clientError, a.serverError]
        var statusLength: UInt64 = 0
        for count in counts where count != 0 {
            statusLength += 1 + Self.varintSize(count)
        }
        self.tag(6, 2)
        self.rawVarint(statusLength)
        for (index, count) in counts.enumerated() {
            self.varint(UInt64(index + 1), count)
        }
        self.varint(7, a.requestBytes)
        self.varint(8, a.responseBytes)
        self.varint(9, a.latencySumUs)
        self.varint(10, a.latencyMaxUs)
        if !a.extraUnits.isEmpty {
            for name in a.extraUnits.keys.sorted() {
                // A map entry is a message {1: key, 2: value}; both are written, defaults too.
                let value = a.extraUnits[name]!
                var entry = ProtobufWriter()
                entry.string(1, name, always: true)
                entry.tag(2, 0)
                entry.rawVarint(value)
                self.message(11, entry.bytes)
            }
        }
        self.varint(12, a.overageUnits)
        self.varint(13, a.overageChargeAtomic)
        self.string(14, a.leaseID)
        self.varint(15, a.leasedUnits)
    }
}

extension UsageBatchFrame {
    /// The frame of a generated message, field for field.
    public init(message batch: Tollgate_V1_UsageBatch) {
        self.init(
            sidecarID: batch.sidecarID, bootEpoch: batch.bootEpoch, sequence: batch.sequence,
            createdAtUnixMs: batch.createdAtUnixMs, aggregates: batch.aggregates.map(Aggregate.init(message:))
        )
    }
}

extension UsageBatchFrame.Aggregate {
    /// The aggregate of a generated message, field for field.
    public init(message m: Tollgate_V1_UsageAggregate) {
        self.init(keyID: m.keyID, feature: m.feature, periodID: m.periodID)
        self.calls = m.calls
        self.units = m.units
        self.informational = m.status.informational
        self.success = m.status.success
        self.redirection = m.status.redirection
        self.clientError = m.status.clientError
        self.serverError = m.status.serverError
        self.requestBytes = m.requestBytes
        self.responseBytes = m.responseBytes
        self.latencySumUs = m.latencySumUs
        self.latencyMaxUs = m.latencyMaxUs
        self.extraUnits = m.extraUnits
        self.overageUnits = m.overageUnits
        self.overageChargeAtomic = m.overageChargeAtomic
        self.leaseID = m.leaseID
        self.leasedUnits = m.leasedUnits
    }
}
