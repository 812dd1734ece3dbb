import Testing
@testable import TollgateSidecar
import TollgateWire

/// The sidecar's record of pushed updates (`GET /v1/updates`): newest first, bounded.
@Suite struct UpdateLogTests {
    static func update(_ version: UInt64, _ kind: Tollgate_V1_QuotaUpdate.Kind = .planChanged) -> Tollgate_V1_QuotaUpdate {
        var update = Tollgate_V1_QuotaUpdate()
        update.version = version
        update.kind = kind
        update.keyID = "k\(version)"
        return update
    }

    @Test("keeps the last updates, newest first, with their times and whether they applied")
    func keepsTheLast() {
        let log = UpdateLog(capacity: 3)
        #expect(log.entries.isEmpty)
        log.record(Self.update(1), sentAtUnixMs: 1_000, appliedAtUnixNanos: 1_000_400_000, applied: true)
        log.record(Self.update(2, .keyRevoked), sentAtUnixMs: 0, appliedAtUnixNanos: 2_000_000_000, applied: false)
        #expect(log.entries.map(\.version) == [2, 1])
        #expect(log.entries.first?.kind == "key_revoked")
        #expect(log.entries.first?.applied == false)
        for version in 3...7 {
            log.record(Self.update(UInt64(version)), sentAtUnixMs: 5, appliedAtUnixNanos: Int64(version), applied: true)
        }
        #expect(log.entries.map(\.version) == [7, 6, 5])
        #expect(log.entries.map(\.keyID) == ["k7", "k6", "k5"])
    }
}
