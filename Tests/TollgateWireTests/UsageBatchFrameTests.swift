import SwiftProtobuf
import Testing
import TollgateTestSupport
import TollgateWire

/// The hand-written usage batch codec must read and write exactly what the generated code does.
@Suite struct UsageBatchFrameTests {
    let codec = WireCodec(maxFrameBytes: 1 << 20)

    /// A random batch as a generated message: every field, some left at their defaults.
    static func randomMessage(_ random: inout SplitMix64, aggregates: Int) -> Tollgate_V1_UsageBatch {
        func value(_ random: inout SplitMix64) -> UInt64 {
            switch random.next() % 4 {
            case 0: 0
            case 1: random.next() % 200
            case 2: random.next() >> (random.next() % 64)
            default: UInt64.max - random.next() % 3
            }
        }
        var batch = Tollgate_V1_UsageBatch()
        batch.sidecarID = random.next() % 5 == 0 ? "" : "sc-\(random.next() % 100)-é"
        batch.bootEpoch = value(&random)
        batch.sequence = value(&random)
        batch.createdAtUnixMs = Int64(bitPattern: value(&random))
        for index in 0..<aggregates {
            var a = Tollgate_V1_UsageAggregate()
            a.keyID = String(repeating: "ab", count: Int(random.next() % 40)) + "\(index)"
            a.feature = random.next() % 3 == 0 ? "" : "api_call"
            a.periodID = "d2026112\(random.next() % 10)"
            a.calls = value(&random)
            a.units = value(&random)
            a.status.informational = value(&random)
            a.status.success = value(&random)
            a.status.redirection = value(&random)
            a.status.clientError = value(&random)
            a.status.serverError = value(&random)
            a.requestBytes = value(&random)
            a.responseBytes = value(&random)
            a.latencySumUs = value(&random)
            a.latencyMaxUs = value(&random)
            if random.next() % 2 == 0 { a.extraUnits = ["tokens": value(&random), "": value(&random), "ü": 0] }
            a.overageUnits = value(&random)
            a.overageChargeAtomic = value(&random)
            a.leaseID = random.next() % 2 == 0 ? "" : "\(random.next())"
            a.leasedUnits = value(&random)
            batch.aggregates.append(a)
        }
        return batch
    }

    @Test("frames written by hand decode with SwiftProtobuf, and SwiftProtobuf's bytes decode as frames")
    func matchesGeneratedCode() throws {
        var random = SplitMix64(seed: 0x5EED_F4A3)
        for round in 0..<200 {
            let message = Self.randomMessage(&random, aggregates: round % 7)
            let frame = UsageBatchFrame(message: message)
            let correlationID = random.next()
            let sentAt = Int64(bitPattern: random.next())

            let handWritten = try codec.encode(frame, correlationID: correlationID, sentAtUnixMs: sentAt)
            let generated = try codec.decode(handWritten)
            #expect(generated.body == .usageBatch(message))
            #expect(generated.correlationID == correlationID && generated.sentAtUnixMs == sentAt)

            let viaGenerated = try codec.encode(.usageBatch(message), correlationID: correlationID, sentAtUnixMs: sentAt)
            guard case .usageBatch(let decoded, let decodedCorrelation, let decodedSentAt) = try codec.decodeFrame(viaGenerated) else {
                Issue.record("a usage batch envelope did not decode as a frame")
                return
            }
            #expect(decoded == frame && decodedCorrelation == correlationID && decodedSentAt == sentAt)
            if message.aggregates.allSatisfy({ $0.extraUnits.count < 2 }) {
                // Without maps (whose order SwiftProtobuf leaves open) the bytes are the same.
                #expect(handWritten == viaGenerated)
            }
        }
    }

    @Test("other kinds decode as envelopes")
    func otherKinds() throws {
        var heartbeat = Tollgate_V1_Heartbeat()
        heartbeat.sidecarID = "sc-1"
        let bytes = try codec.encode(.heartbeat(heartbeat), correlationID: 3)
        guard case .envelope(let envelope) = try codec.decodeFrame(bytes) else {
            Issue.record("a heartbeat decoded as a usage batch")
            return
        }
        #expect(envelope.body == .heartbeat(heartbeat) && envelope.correlationID == 3)
    }

    @Test("truncated at every byte, concatenated, or with a foreign version: refused with the codec's errors, never a crash")
    func adversarial() throws {
        var random = SplitMix64(seed: 42)
        let frame = UsageBatchFrame(message: Self.randomMessage(&random, aggregates: 3))
        let bytes = try codec.encode(frame, correlationID: 9)
        for cut in 0..<bytes.count {
            #expect(throws: WireError.self) { try codec.decodeFrame(Array(bytes.prefix(cut))) }
        }
        for joined in [bytes + bytes, bytes + (try codec.encode(.heartbeat(.init())))] {
            let error = #expect(throws: WireError.self) { try codec.decodeFrame(joined) }
            #expect(error?.code == .malformed)
        }
        // The batch's own field repeated at the top level (its aggregates split in two) is two envelopes' worth.
        var split = Array(bytes)
        split += [0xA2, 0x01, 0x00]
        #expect((try? codec.decodeFrame(split)) == nil)
        var message = Tollgate_V1_Envelope()
        message.protocolVersion = 2
        message.body = .usageBatch(Self.randomMessage(&random, aggregates: 1))
        let foreign = #expect(throws: WireError.self) { try codec.decodeFrame(try message.serializedBytes()) }
        #expect(foreign?.code == .unsupportedVersion)
        let oversized = #expect(throws: WireError.self) { try WireCodec(maxFrameBytes: 64).decodeFrame(bytes) }
        #expect(oversized?.code == .oversized)
        // Invalid UTF-8 in a key id is malformed, as SwiftProtobuf says.
        var bad = UsageBatchFrame(sidecarID: "sc", bootEpoch: 1, sequence: 1)
        bad.aggregates = [.init(keyID: "KEYKEY", feature: "f", periodID: "p")]
        var badBytes = try codec.encode(bad)
        let at = try #require(badBytes.firstIndex(of: UInt8(ascii: "K")))
        badBytes[at] = 0xFF
        #expect(throws: (any Error).self) { try codec.decode(badBytes) }
        let invalid = #expect(throws: WireError.self) { try codec.decodeFrame(badBytes) }
        #expect(invalid?.code == .malformed)
        // Random bytes never crash either decoder.
        for _ in 0..<2_000 {
            let garbage = (0..<Int(random.next() % 64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            _ = try? codec.decodeFrame([0x08, 0x01, 0xA2, 0x01, UInt8(garbage.count)] + garbage)
        }
    }

    @Test("SwiftProtobuf's reading rules: last value wins, a sub-message twice merges, a wrong wire type is skipped")
    func protobufRules() throws {
        // UsageBatch { sequence: 1, sequence: 2, aggregates { calls: 5, status {success: 3}, status {server_error: 1},
        //              calls as fixed64 (wrong wire type, skipped), field 99 (unknown) } }
        let aggregate: [UInt8] = [0x0A, 0x01, 0x6B, 0x20, 0x05, 0x32, 0x02, 0x10, 0x03, 0x32, 0x02, 0x28, 0x01]
            + [0x21, 1, 2, 3, 4, 5, 6, 7, 8] + [0x98, 0x06, 0x07]
        let batch: [UInt8] = [0x18, 0x01, 0x18, 0x02, 0x2A, UInt8(aggregate.count)] + aggregate
        let envelope: [UInt8] = [0x08, 0x01, 0xA2, 0x01, UInt8(batch.count)] + batch
        let generated = try codec.decode(envelope)
        guard case .usageBatch(let frame, _, _) = try codec.decodeFrame(envelope), case .usageBatch(let message)? = generated.body else {
            Issue.record("expected usage batches from both decoders")
            return
        }
        #expect(frame == UsageBatchFrame(message: message))
        #expect(frame.sequence == 2 && frame.aggregates.first?.calls == 5)
        #expect(frame.aggregates.first?.success == 3 && frame.aggregates.first?.serverError == 1)
    }
}
