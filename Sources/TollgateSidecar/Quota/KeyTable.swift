/// A hash table from key id to a per-key value, built for many small entries: the entries live in
/// one dense array, and the index is an open-addressed array of 8-byte slots (linear probing, load
/// at most 4/5) holding an entry's position and 32 bits of its hash.
///
/// Against a `Dictionary<String, Value>` of the same keys it saves the key strings (see
/// `CompactKeyID`), a dictionary's lower load factor (3/4, so 100,000 keys take 262,144 buckets of
/// key and value), and a full key comparison on every probe. Removal moves the last entry into the
/// hole, so positions are only stable until the next removal.
///
/// Threading: a value; its owner guards it (`QuotaGate` and `KeyDirectory` keep theirs under a lock).
struct KeyTable<Value> {
    /// One entry: the key and its value.
    struct Entry {
        var id: CompactKeyID
        var value: Value
    }

    /// The entries, in no particular order.
    private(set) var entries: ContiguousArray<Entry> = []
    /// 0 when free, else `(hash tag << 32) | (position + 1)`.
    private var slots: [UInt64] = Array(repeating: 0, count: 8)
    private var mask = 7

    /// How many keys the table holds.
    var count: Int { entries.count }

    /// The position of `id`'s entry, or nil.
    func position(of id: CompactKeyID) -> Int? {
        let hash = Self.mix(id.tableHash)
        let tag = hash >> 32
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let word = slots[slot]
            if word == 0 { return nil }
            if word >> 32 == tag {
                let position = Int(truncatingIfNeeded: word & 0xFFFF_FFFF) - 1
                if entries[position].id == id { return position }
            }
            slot = (slot + 1) & mask
        }
    }

    /// The value at `position` (from `position(of:)` or `insert`), read and mutated in place (a
    /// field read does not copy the whole value).
    subscript(position: Int) -> Value {
        _read { yield entries[position].value }
        _modify { yield &entries[position].value }
    }

    /// Adds `value` for `id`, which must not be in the table yet; returns its position.
    mutating func insert(_ value: Value, for id: CompactKeyID) -> Int {
        if (entries.count + 1) * 5 > slots.count * 4 { grow() }
        let position = entries.count
        entries.append(Entry(id: id, value: value))
        place(position, hash: Self.mix(id.tableHash))
        return position
    }

    /// Removes `id`'s entry and returns its value, or nil when absent.
    @discardableResult
    mutating func remove(_ id: CompactKeyID) -> Value? {
        guard let position = position(of: id) else { return nil }
        unplace(position, hash: Self.mix(id.tableHash))
        let last = entries.count - 1
        if position != last {
            let moved = entries[last].id
            let movedHash = Self.mix(moved.tableHash)
            unplace(last, hash: movedHash)
            entries.swapAt(position, last)
            place(position, hash: movedHash)
        }
        return entries.removeLast().value
    }

    /// Empties the table.
    mutating func removeAll() {
        self = KeyTable()
    }

    /// Writes `position` into the first free slot of its probe sequence.
    private mutating func place(_ position: Int, hash: UInt64) {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = (hash >> 32) << 32 | UInt64(position + 1)
    }

    /// Clears the slot that points at `position`, shifting later slots of the run back so every
    /// entry stays reachable from its home slot (deletion without tombstones).
    private mutating func unplace(_ position: Int, hash: UInt64) {
        let target = (hash >> 32) << 32 | UInt64(position + 1)
        var hole = Int(truncatingIfNeeded: hash) & mask
        while slots[hole] != target { hole = (hole + 1) & mask }
        slots[hole] = 0
        var next = (hole + 1) & mask
        while slots[next] != 0 {
            let word = slots[next]
            let entry = Int(truncatingIfNeeded: word & 0xFFFF_FFFF) - 1
            let home = Int(truncatingIfNeeded: Self.mix(entries[entry].id.tableHash)) & mask
            // Move it into the hole unless its home lies cyclically in (hole, next].
            let distanceToHome = (next - home) & mask
            let distanceToHole = (next - hole) & mask
            if distanceToHome >= distanceToHole {
                slots[hole] = word
                slots[next] = 0
                hole = next
            }
            next = (next + 1) & mask
        }
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = Array(repeating: 0, count: size)
        mask = size - 1
        for position in entries.indices { place(position, hash: Self.mix(entries[position].id.tableHash)) }
    }

    /// Spreads the id's bits over the whole word (a SplitMix64 finaliser), so low bits pick the
    /// slot and high bits make the tag.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
