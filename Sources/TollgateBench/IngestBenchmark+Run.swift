import ArgumentParser
import Foundation
import TollgateCore
import TollgateRedis
import TollgateSidecar
import TollgateStore

/// What one ingest run measured.
struct Measurement {
    var produced: ProducerReport
    /// First record → last record returned.
    var recordSeconds: Double
    /// First record → last ack seen.
    var endToEndSeconds: Double
    /// Last ack seen → uplink thread stopped (spool close).
    var stopSeconds: Double
    var status: UplinkStatus
    var redis: (before: RedisStats, after: RedisStats)
    /// CPU seconds per thread name over the run.
    var threads: [(String, Double)]
}

extension IngestBenchmark {
    /// Starts the uplink, waits for the collector to answer, records the events, drains, and samples as it goes.
    func measure(_ workload: IngestWorkload, endpoint: String, spoolDirectory: String, probe: RedisConnection) async throws -> Measurement {
        var configuration = UplinkConfiguration(sidecarID: "bench-\(UInt32.random(in: 0 ... .max))", endpoints: [endpoint], spoolDirectory: spoolDirectory)
        configuration.spool.fsync = switch self.fsync {
        case .never: .never
        case .interval: .interval(milliseconds: self.fsyncIntervalMs)
        case .always: .always
        }
        configuration.drainTimeout = .seconds(self.timeout)
        let recorder = UplinkRecorder(options: .init(
            aggregate: !self.noAggregate, maxAggregatesPerBatch: self.maxAggregates, flushInterval: .milliseconds(self.flushMs),
            backlogFlushInterval: .milliseconds(self.backlogFlushMs)
        ))
        let uplink = try Uplink(configuration: configuration, recorder: recorder)
        await ThreadName.whileNamed("tg-uplink") { uplink.start() }
        let clock = ContinuousClock()
        // Measure the steady state: the first batch should not wait for the connection handshake.
        let connectDeadline = clock.now + .seconds(10)
        while !uplink.status.isConnected {
            guard clock.now < connectDeadline, uplink.status.failure == nil else {
                try? await uplink.stop()
                throw ValidationError("the uplink did not connect to the collector: \(uplink.status.failure ?? "timed out")")
            }
            try await Task.sleep(for: .milliseconds(1))
        }

        var cpu = ThreadCPU()
        cpu.sample()
        let cpuBefore = cpu.byName
        let redisBefore = try RedisStats.read(probe)
        let start = clock.now
        let sampler = Task { () -> ThreadCPU in
            // Threads that end before the run does keep their last sample, so sample often.
            var cpu = ThreadCPU()
            while !Task.isCancelled {
                cpu.sample()
                try? await Task.sleep(for: .milliseconds(50))
            }
            return cpu
        }
        let produced = await workload.produce(events: self.events, producers: self.producers, into: recorder)
        let recorded = clock.now
        // The stop forces the open batch out at once, then waits for every ack (bounded by drainTimeout).
        uplink.requestStop()
        var acked = uplink.status.batchesAcked
        var lastAck = recorded
        while true {
            let status = uplink.status
            if status.batchesAcked != acked { (acked, lastAck) = (status.batchesAcked, clock.now) }
            if !status.isRunning { break }
            // Every 2 ms: the last ack is known within that, and polling costs the 2 cores little.
            try await Task.sleep(for: .milliseconds(2))
        }
        try await uplink.join()
        let stopped = clock.now
        sampler.cancel()
        cpu = await sampler.value
        cpu.sample()
        let status = uplink.status
        if status.batchesAcked != acked { lastAck = stopped }

        guard produced.notRecorded == 0 else {
            throw ValidationError("the recorder refused or dropped \(produced.notRecorded) events (status: \(status))")
        }
        guard status.failure == nil, status.unackedBatches == 0, status.unspooledBatches == 0, status.batchesRejected == 0 else {
            throw ValidationError("not every batch was acknowledged within \(self.timeout) s: \(status)")
        }
        return Measurement(
            produced: produced, recordSeconds: (recorded - start).inSeconds, endToEndSeconds: (lastAck - start).inSeconds,
            stopSeconds: (stopped - lastAck).inSeconds, status: status, redis: (redisBefore, try RedisStats.read(probe)),
            threads: ThreadCPU.delta(cpuBefore, cpu.byName.merging(["bench-producer": produced.cpuSeconds]) { $1 })
        )
    }

    /// Reads every key's counters back and fails unless the sums match what was recorded exactly.
    func verify(_ workload: IngestWorkload, expected: ExpectedTotals, probe: RedisConnection) throws {
        let store = UsageStore()
        let periodID = ResetInterval.day.period(containing: workload.at).id
        var found = ExpectedTotals()
        for keyID in workload.keyIDs {
            let counters = try store.usage(keyID: keyID, feature: FeatureName.apiCall.rawValue, periodID: periodID, on: probe)
            found.add(ExpectedTotals(
                calls: counters.calls, units: counters.units, success: counters.statuses.success,
                requestBytes: counters.requestBytes, responseBytes: counters.responseBytes,
                latencySumMicroseconds: counters.latencySumMicroseconds
            ))
        }
        guard found == expected, found.calls == UInt64(self.events) else {
            throw ValidationError("""
                Redis does not hold what was recorded (period \(periodID), \(self.keys) keys):
                  expected \(expected)
                  found    \(found)
                """)
        }
        print("ingest.verify period=\(periodID) keys=\(self.keys) \(found) ok")
    }

    /// Prints the figures as `key=value` lines for scripts/bench-ingest.sh.
    func report(_ m: Measurement) {
        let mode = self.noAggregate ? "unaggregated" : "aggregated"
        let luaCalls = m.redis.after.evalshaCalls - m.redis.before.evalshaCalls
        let luaSeconds = Double(m.redis.after.evalshaMicroseconds - m.redis.before.evalshaMicroseconds) / 1e6
        let batches = Double(max(1, m.status.batchesSent))
        print("ingest mode=\(mode) events=\(self.events) keys=\(self.keys) distribution=\(self.distribution.rawValue) "
            + "fsync=\(self.fsync.rawValue) producers=\(self.producers) max_aggregates=\(self.maxAggregates) flush_ms=\(self.flushMs) backlog_flush_ms=\(self.backlogFlushMs) "
            + "seconds=\(fixed(m.endToEndSeconds, 3)) events_per_sec=\(fixed(Double(self.events) / m.endToEndSeconds, 0))")
        print("ingest.batches sent=\(m.status.batchesSent) acked=\(m.status.batchesAcked) retried=\(m.status.batchesRetried) "
            + "rejected=\(m.status.batchesRejected) events_per_batch=\(fixed(Double(self.events) / batches, 1)) "
            + "lua_calls=\(luaCalls) lua_calls_per_batch=\(fixed(Double(luaCalls) / batches, 1)) "
            + "events_per_lua_call=\(fixed(Double(self.events) / Double(max(1, luaCalls)), 2))")
        print("ingest.time record_seconds=\(fixed(m.recordSeconds, 3)) "
            + "record_events_per_sec=\(fixed(Double(self.events) / m.recordSeconds, 0)) "
            + "drain_after_record_seconds=\(fixed(m.endToEndSeconds - m.recordSeconds, 3)) stop_seconds=\(fixed(m.stopSeconds, 3)) "
            + "redis_lua_seconds=\(fixed(luaSeconds, 3)) usec_per_lua_call=\(fixed(luaSeconds * 1e6 / Double(max(1, luaCalls)), 2)) "
            + "redis_cpu_seconds=\(fixed(m.redis.after.cpuSeconds - m.redis.before.cpuSeconds, 3))")
        for (name, seconds) in m.threads {
            print("ingest.cpu thread=\(name.replacingOccurrences(of: " ", with: "_")) cpu_seconds=\(fixed(seconds, 3)) "
                + "busy=\(fixed(100 * seconds / m.endToEndSeconds, 0))%")
        }
    }
}
