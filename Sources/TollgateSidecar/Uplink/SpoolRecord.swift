/// The on-disk framing of spool records.
///
/// A segment file starts with the 8-byte magic `TGSPOOL1`, then holds records back to back:
///
/// ```
/// [u32 LE payload length][u32 LE CRC-32C of (type byte + payload)][u8 type][payload]
/// type 1 (batch): payload = the serialized Envelope carrying the UsageBatch (it names its epoch and sequence)
/// type 2 (ack):   payload = [u64 LE epoch][u64 LE sequence][u8 outcome: 1 applied, 2 duplicate, 3 rejected]
/// ```
///
/// The dead-letter file uses the same framing with type 3: `[u32 LE reason length][reason UTF-8][envelope]`.
enum SpoolRecord {
    /// Bytes before the payload: length, checksum, type.
    static let headerBytes = 9
    /// The segment file magic.
    static let magic: [UInt8] = Array("TGSPOOL1".utf8)
    /// A length above this is corruption, not a record (batches are far smaller).
    static let maxPayloadBytes = 64 << 20

    /// Record kinds.
    enum Kind: UInt8 {
        case batch = 1
        case ack = 2
        case deadLetter = 3
    }

    /// One record as parsed from a segment.
    struct Parsed {
        var kind: Kind
        /// Offset of the record's header in the file.
        var offset: Int
        /// Offset and length of the payload in the file.
        var payloadOffset: Int
        var payloadLength: Int
    }

    /// Why parsing stopped before the end of the bytes.
    enum Damage: Equatable {
        /// The last record is cut short: a write interrupted by a crash.
        case torn
        /// A record's checksum, length or type is wrong.
        case corrupt(String)
    }

    /// Frames `payload` as a record of `kind`.
    static func encode(_ kind: Kind, _ payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headerBytes + payload.count)
        appendLittleEndian(UInt32(payload.count), to: &bytes)
        let crc = CRC32C.update(CRC32C.checksum(CollectionOfOne(kind.rawValue)), with: payload)
        appendLittleEndian(crc, to: &bytes)
        bytes.append(kind.rawValue)
        bytes.append(contentsOf: payload)
        return bytes
    }

    /// Parses records from `bytes` starting at `start`; stops at the end or at the first damage.
    ///
    /// Returns the good records and, when it stopped early, where and why: everything from that
    /// offset on is untrusted, since a bad length means the next record's start is unknown.
    static func parse(_ bytes: [UInt8], from start: Int) -> (records: [Parsed], damage: (offset: Int, Damage)?) {
        var records: [Parsed] = []
        var offset = start
        while offset < bytes.count {
            guard bytes.count - offset >= headerBytes else { return (records, (offset, .torn)) }
            let length = Int(readLittleEndian(UInt32.self, bytes, at: offset))
            let crc = readLittleEndian(UInt32.self, bytes, at: offset + 4)
            let type = bytes[offset + 8]
            guard length <= maxPayloadBytes else {
                return (records, (offset, .corrupt("record length \(length) exceeds \(maxPayloadBytes)")))
            }
            let payloadOffset = offset + headerBytes
            guard bytes.count - payloadOffset >= length else { return (records, (offset, .torn)) }
            let actual = CRC32C.update(CRC32C.checksum(CollectionOfOne(type)), with: bytes[payloadOffset ..< payloadOffset + length])
            guard actual == crc else {
                return (records, (offset, .corrupt("checksum mismatch at offset \(offset)")))
            }
            guard let kind = Kind(rawValue: type) else {
                return (records, (offset, .corrupt("unknown record type \(type) at offset \(offset)")))
            }
            records.append(Parsed(kind: kind, offset: offset, payloadOffset: payloadOffset, payloadLength: length))
            offset = payloadOffset + length
        }
        return (records, nil)
    }

    /// The payload of an ack record.
    static func ackPayload(_ id: BatchID, _ outcome: BatchOutcome) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(17)
        appendLittleEndian(id.epoch, to: &bytes)
        appendLittleEndian(id.sequence, to: &bytes)
        bytes.append(outcome.rawValue)
        return bytes
    }

    /// Decodes an ack payload; nil when it is malformed.
    static func decodeAck(_ bytes: ArraySlice<UInt8>) -> (BatchID, BatchOutcome)? {
        guard bytes.count == 17, let outcome = BatchOutcome(rawValue: bytes[bytes.startIndex + 16]) else { return nil }
        let base = Array(bytes)
        return (BatchID(epoch: readLittleEndian(UInt64.self, base, at: 0), sequence: readLittleEndian(UInt64.self, base, at: 8)), outcome)
    }

    static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { bytes.append(contentsOf: $0) }
    }

    static func readLittleEndian<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], at offset: Int) -> T {
        var value: T = 0
        for index in 0 ..< MemoryLayout<T>.size {
            value |= T(bytes[offset + index]) << (8 * index)
        }
        return value
    }
}
