/// Bounds on what one batch may carry; input beyond them is refused, never truncated.
public struct UsageBatchLimits: Sendable, Hashable {
    /// Most aggregates in one batch; default 10,000.
    public var maxAggregates: Int = 10_000
    /// Longest key id, sidecar id, feature or period id, in UTF-8 bytes; default 128.
    public var maxNameBytes: Int = 128
    /// Most extra meters on one aggregate; default 32.
    public var maxExtraUnits: Int = 32
    /// Largest value of one counter in one aggregate; default 2^50, so Redis's int64 sums never overflow.
    public var maxCounterValue: UInt64 = 1 << 50

    /// The defaults.
    public init() {}
}

extension UsageBatchRecord {
    /// Throws `StoreError.invalidInput` naming the first rule the batch breaks.
    public func validate(limits: UsageBatchLimits = UsageBatchLimits()) throws(StoreError) {
        try Self.checkName(self.sidecarID, "sidecar_id", limits: limits, allowColon: true)
        guard self.aggregates.count <= limits.maxAggregates else {
            throw StoreError(.invalidInput, "\(self.aggregates.count) aggregates exceed the limit of \(limits.maxAggregates)")
        }
        // Most aggregates of a batch share their period and feature: check each distinct one once.
        var checked: (periodID: String, feature: String)?
        for (index, aggregate) in self.aggregates.enumerated() {
            do {
                let known = checked.map { $0.periodID == aggregate.periodID && $0.feature == aggregate.feature } ?? false
                try aggregate.validate(limits: limits, namesChecked: known)
                checked = (aggregate.periodID, aggregate.feature)
            } catch {
                throw StoreError(.invalidInput, "aggregate \(index): \(error.message)")
            }
        }
    }

    /// Refuses empty names, over-long ones, and characters that would break or confuse a Redis key.
    static func checkName(_ name: String, _ what: String, limits: UsageBatchLimits, allowColon: Bool) throws(StoreError) {
        guard !name.isEmpty else { throw StoreError(.invalidInput, "\(what) is empty") }
        guard name.utf8.count <= limits.maxNameBytes else {
            throw StoreError(.invalidInput, "\(what) is longer than \(limits.maxNameBytes) bytes")
        }
        // `{`/`}` would change the hash tag; control bytes (newline...) and space have no place in ids.
        func forbidden(_ byte: UInt8) -> Bool {
            byte < 0x21 || byte == 0x7F || byte == UInt8(ascii: "{") || byte == UInt8(ascii: "}")
                || (!allowColon && byte == UInt8(ascii: ":"))
        }
        // One pass over contiguous UTF-8 (every native string) finds whether any byte is bad.
        let clean = name.utf8.withContiguousStorageIfAvailable { !$0.contains(where: forbidden) } ?? !name.utf8.contains(where: forbidden)
        guard !clean, let byte = name.utf8.first(where: forbidden) else { return }
        throw StoreError(.invalidInput, "\(what) contains a forbidden character (byte 0x\(String(byte, radix: 16)))")
    }
}

extension UsageAggregateRecord {
    /// Throws `StoreError.invalidInput` naming the first rule the aggregate breaks.
    public func validate(limits: UsageBatchLimits = UsageBatchLimits()) throws(StoreError) {
        try self.validate(limits: limits, namesChecked: false)
    }

    /// As `validate(limits:)`; `namesChecked` skips the feature and period id, already found valid.
    func validate(limits: UsageBatchLimits, namesChecked: Bool) throws(StoreError) {
        try UsageBatchRecord.checkName(self.keyID, "key_id", limits: limits, allowColon: false)
        if !namesChecked {
            try UsageBatchRecord.checkName(self.feature, "feature", limits: limits, allowColon: false)
            try UsageBatchRecord.checkName(self.periodID, "period_id", limits: limits, allowColon: false)
            guard PeriodEnd.of(self.periodID) != nil else {
                throw StoreError(.invalidInput, "period_id \"\(self.periodID)\" is not a period id (e.g. d20261123)")
            }
        }
        guard self.counters.extraUnits.count <= limits.maxExtraUnits else {
            throw StoreError(.invalidInput, "\(self.counters.extraUnits.count) extra meters exceed the limit of \(limits.maxExtraUnits)")
        }
        for name in self.counters.extraUnits.keys {
            try UsageBatchRecord.checkName(name, "extra unit name", limits: limits, allowColon: false)
        }
        var withinLimit = self.counters.latencyMaxMicroseconds <= limits.maxCounterValue
        self.counters.forEachIncrement { _, _, value in withinLimit = withinLimit && value <= limits.maxCounterValue }
        guard withinLimit else {
            throw StoreError(.invalidInput, "a counter exceeds \(limits.maxCounterValue)")
        }
        guard self.leasedUnits <= self.counters.units else {
            throw StoreError(.invalidInput, "leased_units \(self.leasedUnits) exceed units \(self.counters.units)")
        }
    }
}
