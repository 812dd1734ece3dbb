import TollgateRedis

extension UsageStore {
    /// Applies one API key's share of one batch, at most once: one call per key and batch.
    ///
    /// KEYS: [1] the batch marker, then per aggregate its counter hash, its period's feature set and
    /// its lease hash (all of one key, so one slot). ARGV: [1] marker TTL seconds, [2] the lease
    /// holder (`<sidecar>|<epoch>`), then per aggregate: feature, counter TTL seconds, latency
    /// maximum, leased units, n, and n pairs of field and increment.
    /// Returns 1 when applied now, 0 when the marker was already there (nothing changed).
    ///
    /// The marker is set first with `NX`: the script runs atomically, so either the marker and every
    /// increment land together, or (marker present) nothing does. Inputs are validated beforehand so
    /// no `HINCRBY` can fail half way (Redis does not roll a script back).
    ///
    /// Leased units settle the holder's outstanding lease in the same step that counts them, so
    /// `units + outstanding` (what the lease allocator subtracts from the budget) never counts a unit
    /// twice or drops it. A holder already reclaimed (expired) settles nothing.
    static let applyScript = RedisScript("""
    if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
      return 0
    end
    local holder = 'h:' .. ARGV[2]
    local a = 3
    for k = 2, #KEYS, 3 do
      local hash, set, lease = KEYS[k], KEYS[k + 1], KEYS[k + 2]
      local feature, ttl, latmax, leased, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
      a = a + 5
      for i = 1, n do
        redis.call('HINCRBY', hash, ARGV[a], ARGV[a + 1])
        a = a + 2
      end
      if tonumber(latmax) > tonumber(redis.call('HGET', hash, 'lat_max_us') or '0') then
        redis.call('HSET', hash, 'lat_max_us', latmax)
      end
      if leased > 0 then
        local held = tonumber(redis.call('HGET', lease, holder) or '0')
        local settle = math.min(leased, held)
        if settle > 0 then
          redis.call('HINCRBY', lease, holder, -settle)
        end
      end
      redis.call('SADD', set, feature)
      redis.call('EXPIRE', hash, ttl)
      redis.call('EXPIRE', set, ttl)
    end
    return 1
    """)

    /// The script call for `aggregates`, all of key `keyID`, in batch `batch`.
    func applyCall(keyID: String, aggregates: [UsageAggregateRecord], of batch: UsageBatchRecord) -> RedisScriptCall {
        let now = self.clock.now()
        let retention = Int64(self.configuration.counterRetention.components.seconds)
        var keys: [RedisArgument] = [
            RedisArgument(RedisKeys.batchMarker(keyID: keyID, sidecarID: batch.sidecarID, bootEpoch: batch.bootEpoch, sequence: batch.sequence)),
        ]
        var args: [RedisArgument] = [
            RedisArgument(max(1, self.configuration.markerTTL.components.seconds)),
            RedisArgument(LeaseStore.holder(sidecarID: batch.sidecarID, bootEpoch: batch.bootEpoch)),
        ]
        for aggregate in aggregates {
            keys.append(RedisArgument(RedisKeys.usage(keyID: keyID, feature: aggregate.feature, periodID: aggregate.periodID)))
            keys.append(RedisArgument(RedisKeys.features(keyID: keyID, periodID: aggregate.periodID)))
            keys.append(RedisArgument(RedisKeys.leases(keyID: keyID, feature: aggregate.feature, periodID: aggregate.periodID)))
            // Validation guarantees the period id parses; counters live until `retention` after the
            // period ends, and never less than `retention` from now (a late retry of an old period).
            let end = PeriodEnd.of(aggregate.periodID) ?? now
            let ttl = max(end.seconds - now.seconds + retention, retention, 1)
            let increments = aggregate.counters.increments
            args.append(RedisArgument(aggregate.feature))
            args.append(RedisArgument(ttl))
            args.append(RedisArgument(aggregate.counters.latencyMaxMicroseconds))
            args.append(RedisArgument(aggregate.leasedUnits))
            args.append(RedisArgument(increments.count))
            for (field, value) in increments {
                args.append(RedisArgument(field))
                args.append(RedisArgument(value))
            }
        }
        return RedisScriptCall(keys: keys, args: args)
    }
}
