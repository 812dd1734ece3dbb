import Testing
import TollgateSidecar

@Suite("Spool CRC-32C")
struct SpoolCRC32CTests {
    @Test("matches the published CRC-32C check values")
    func knownVectors() {
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        // RFC 3720 (iSCSI) appendix B.4.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0 ..< 32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0 ..< 32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
    }

    @Test("checksumming in parts equals checksumming the whole")
    func incremental() {
        let bytes = Array("The quick brown fox jumps over the lazy dog".utf8)
        for split in [0, 1, 7, bytes.count - 1, bytes.count] {
            let parts = CRC32C.update(CRC32C.checksum(bytes[..<split]), with: bytes[split...])
            #expect(parts == CRC32C.checksum(bytes))
        }
        #expect(CRC32C.checksum(bytes) == 0x2262_0404)
    }
}
