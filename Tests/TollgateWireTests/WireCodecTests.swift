import Foundation
import SwiftProtobuf
import Testing
import TollgateWire
import TollgateTestSupport

@Suite struct WireCodecTests {
    let codec = WireCodec(maxFrameBytes: 64 * 1024)

    static func sampleBatch(sequence: UInt64 = 7, aggregates: Int = 3) -> Tollgate_V1_UsageBatch {
        var batch = Tollgate_V1_UsageBatch()
        batch.sidecarID = "sc-1"
        batch.bootEpoch = 1_763_900_000
        batch.sequence = sequence
        batch.createdAtUnixMs = 1_763_900_000_123
        for i in 0..<aggregates {
            var agg = Tollgate_V1_UsageAggregate()
            agg.keyID = "key-\(i)"
            agg.feature = "api_call"
            agg.periodID = "d20261123"
            agg.calls = UInt64(10 + i)
            agg.units = UInt64(100 + i)
            agg.status.success = UInt64(9 + i)
            agg.status.serverError = 1
            agg.extraUnits = ["tokens": 532, "compute_ms": 12]
            batch.aggregates.append(agg)
        }
        return batch
    }

    @Test func roundTripsEveryBodyKind() throws {
        var hello = Tollgate_V1_Hello()
        hello.sidecarID = "sc-1"
        hello.bootEpoch = 42
        var ack = Tollgate_V1_BatchAck()
        ack.sequence = 7
        ack.status = .applied
        var grant = Tollgate_V1_LeaseGrant()
        grant.units = 250
        grant.leaseID = "l-1"
        var update = Tollgate_V1_QuotaUpdate()
        update.version = 9
        update.kind = .exhausted
        var payment = Tollgate_V1_PaymentRequest()
        payment.phase = .verifyAndClaim
        payment.paymentHeader = Data("eyJ4NDAyVmVyc2lvbiI6Mn0=".utf8)
        let bodies: [Tollgate_V1_Envelope.OneOf_Body] = [
            .hello(hello), .helloAck(.init()), .heartbeat(.init()), .usageBatch(Self.sampleBatch()),
            .batchAck(ack), .leaseRequest(.init()), .leaseGrant(grant), .leaseReturn(.init()),
            .quotaUpdate(update), .paymentRequest(payment), .paymentResult(.init()), .error(.init()),
        ]
        var kinds = Set<String>()
        for (i, body) in bodies.enumerated() {
            let bytes = try codec.encode(body, correlationID: UInt64(i + 1))
            let decoded = try codec.decode(bytes)
            #expect(decoded.body == body)
            #expect(decoded.correlationID == UInt64(i + 1))
            #expect(decoded.protocolVersion == WireCodec.protocolVersion)
            kinds.insert(body.kindName)
        }
        #expect(kinds.count == bodies.count)
    }

    @Test func everyTruncationIsRefusedWithoutCrashing() throws {
        let bytes = try codec.encode(.usageBatch(Self.sampleBatch()))
        // The body is the last field on the wire, so every proper prefix either lacks a body
        // (unknown kind) or cuts the body short (malformed). None may decode.
        for cut in 0..<bytes.count {
            #expect(throws: WireError.self, "prefix of \(cut) bytes decoded") { try codec.decode(bytes[..<cut]) }
        }
    }

    @Test func garbageIsMalformed() {
        var generator = SplitMix64(seed: 0x7011_6A7E)
        var codes: [WireError.Code: Int] = [:]
        for length in 1...400 {
            let garbage = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            do {
                _ = try codec.decode(garbage)
                Issue.record("random bytes of length \(length) decoded as an envelope")
            } catch {
                codes[error.code, default: 0] += 1
            }
        }
        #expect(codes.values.reduce(0, +) == 400)
        #expect(codes[.oversized] == nil)
    }

    @Test func oversizedFramesAreRefusedBeforeParsing() throws {
        let big = Self.sampleBatch(aggregates: 2_000)
        #expect(throws: WireError.self) { try codec.encode(.usageBatch(big)) }
        let unlimited = WireCodec(maxFrameBytes: 1 << 24)
        let bytes = try unlimited.encode(.usageBatch(big))
        do {
            _ = try codec.decode(bytes)
            Issue.record("oversized frame decoded")
        } catch {
            #expect(error.code == .oversized)
        }
    }

    @Test func concatenatedEnvelopesAreRefused() throws {
        let first = try codec.encode(.usageBatch(Self.sampleBatch(sequence: 1)))
        let second = try codec.encode(.usageBatch(Self.sampleBatch(sequence: 2)))
        let other = try codec.encode(.heartbeat(.init()))
        for joined in [first + second, first + other, other + first, first + first] {
            do {
                _ = try codec.decode(joined)
                Issue.record("two envelopes in one frame decoded as one")
            } catch {
                #expect(error.code == .malformed)
            }
        }
        // Split back apart at the boundary, each half decodes on its own.
        #expect(try codec.decode(first).body == .usageBatch(Self.sampleBatch(sequence: 1)))
    }

    @Test func unknownBodyKindFromANewerPeerIsSkippable() throws {
        // Field 200 (length-delimited) is a body kind this build does not know.
        var envelope = Tollgate_V1_Envelope()
        envelope.protocolVersion = 1
        envelope.correlationID = 5
        var bytes: [UInt8] = try envelope.serializedBytes()
        bytes += [0xC2, 0x0C, 0x02, 0x08, 0x01]  // tag (200 << 3 | 2) as varint, length 2, {1: 1}
        do {
            _ = try codec.decode(bytes)
            Issue.record("unknown kind decoded")
        } catch {
            #expect(error.code == .unknownKind)
        }
    }

    @Test func emptyAndVersionlessFramesAreRefused() throws {
        #expect(throws: WireError.self) { try codec.decode([UInt8]()) }
        var envelope = Tollgate_V1_Envelope()
        envelope.protocolVersion = 2
        envelope.body = .heartbeat(.init())
        let bytes: [UInt8] = try envelope.serializedBytes()
        do {
            _ = try codec.decode(bytes)
            Issue.record("version 2 decoded")
        } catch {
            #expect(error.code == .unsupportedVersion)
        }
    }

    @Test func updateTopicsSharePrefix() {
        var update = Tollgate_V1_QuotaUpdate()
        update.keyID = "ab12"
        #expect(UpdateTopic.of(update) == "u.ab12")
        update.keyID = ""
        #expect(UpdateTopic.of(update) == "u.*")
        #expect(UpdateTopic.of(update).hasPrefix(UpdateTopic.prefix))
    }
}

