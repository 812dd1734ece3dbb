import TollgateRedis

extension UsageStore {
    /// Applies one API key's share of one or more batches of one sender, atomically and at most once.
    ///
    /// KEYS: [1..m] the batch markers (one per batch), then per slot its counter hash, its period's
    /// feature set and its lease hash (all of one API key, so one slot). ARGV: [1] marker TTL seconds,
    /// [2] the lease holder (`<sidecar>|<epoch>`, the sender of every batch in the call), [3] m, then
    /// per slot: feature, counter TTL seconds, latency maximum, leased units, n, and n pairs of field
    /// and increment. A slot is the sum of the call's aggregates of one feature and period.
    ///
    /// Returns 1 when every batch was applied now, 0 when every marker was already there (nothing
    /// changed), and -1 when some were and some were not: then the markers set by this call are
    /// removed again and nothing else was written, and the caller applies those batches one per
    /// call. With m = 1 the answer is always 1 or 0.
    ///
    /// The markers are set first with `NX`: the script runs atomically, so either the markers and
    /// every increment land together, or nothing does. Inputs are validated beforehand so no write
    /// can fail half way (Redis does not roll a script back).
    ///
    /// Expiry: `HINCRBY` answers the new sum, so the script sees when a field was created (the sum
    /// equals the increment: stored sums are never 0), and `HSET` of the latency maximum says so. Only then (a new hash, or a counter seen for
    /// the first time) are the feature added to the set and both expiries set (period end +
    /// retention); a hash that exists already keeps the expiry it got then, and so does its set,
    /// which always gets the same expiry as the hash. Most calls skip `SADD` and both `EXPIRE`s.
    ///
    /// Leased units settle the holder's outstanding lease in the same step that counts them, so
    /// `units + outstanding` (what the lease allocator subtracts from the budget) never counts a unit
    /// twice or drops it. A holder already reclaimed (expired) settles nothing. Settling the sum of
    /// several batches at once settles min(sum, held), exactly what settling them one by one does.
    static let applyScript = RedisScript("""
    local m = tonumber(ARGV[3])
    local fresh = {}
    for i = 1, m do
      if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
        fresh[#fresh + 1] = KEYS[i]
      end
    end
    if #fresh == 0 then
      return 0
    end
    if #fresh < m then
      redis.call('DEL', unpack(fresh))
      return -1
    end
    local holder = 'h:' .. ARGV[2]
    local a = 4
    for k = m + 1, #KEYS, 3 do
      local hash, set, lease = KEYS[k], KEYS[k + 1], KEYS[k + 2]
      local feature, ttl, latmax, leased, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
      a = a + 5
      local created = false
      for i = 1, n do
        local inc = ARGV[a + 1]
        if redis.call('HINCRBY', hash, ARGV[a], inc) == tonumber(inc) then
          created = true
        end
        a = a + 2
      end
      if tonumber(latmax) > tonumber(redis.call('HGET', hash, 'lat_max_us') or '0') then
        if redis.call('HSET', hash, 'lat_max_us', latmax) == 1 then
          created = true
        end
      end
      if leased > 0 then
        local held = tonumber(redis.call('HGET', lease, holder) or '0')
        local settle = math.min(leased, held)
        if settle > 0 then
          redis.call('HINCRBY', lease, holder, -settle)
        end
      end
      if created then
        redis.call('SADD', set, feature)
        redis.call('EXPIRE', hash, ttl)
        redis.call('EXPIRE', set, ttl)
      end
    end
    return 1
    """)
}
