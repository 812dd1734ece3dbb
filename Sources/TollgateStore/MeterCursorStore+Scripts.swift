import TollgateRedis

extension MeterCursorStore {
    /// KEYS: [1] the cursor hash, [2] the counter hash. ARGV: [1] counter field, [2] owner,
    /// [3] now (Unix ms), [4] claim expiry (Unix ms), [5] timestamp for a new range (Unix s),
    /// [6] identifier base `key:feature:meter:period`, [7] how long the cursor outlives the counter (ms),
    /// [8] the included limit for an overage meter (counted = max(0, units − limit − credit), as
    /// the usage API computes it), or empty for a meter that reads the field as it is.
    ///
    /// Returns `{'busy', owner, until}`, `{'idle', sent, counted}`, or
    /// `{'send', from, to, id, ts, claims}`. Numbers stay strings end to end: Lua's own number
    /// formatting (`%.14g`) would round large counters, and an identifier must never change.
    static let claimScript = RedisScript("""
    local c = redis.call('HMGET', KEYS[1], 'sent', 'from', 'to', 'id', 'ts', 'owner', 'until')
    if c[2] then
      if c[6] and c[6] ~= ARGV[2] and tonumber(c[7] or '0') > tonumber(ARGV[3]) then
        return {'busy', c[6], c[7]}
      end
      redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'until', ARGV[4])
      local claims = redis.call('HINCRBY', KEYS[1], 'claims', 1)
      return {'send', c[2], c[3], c[4], c[5], tostring(claims)}
    end
    local sent = c[1] or '0'
    local counted = redis.call('HGET', KEYS[2], ARGV[1]) or '0'
    if ARGV[8] ~= '' then
      local over = tonumber(counted) - tonumber(ARGV[8]) - tonumber(redis.call('HGET', KEYS[2], 'credit') or '0')
      counted = string.format('%d', math.max(0, over))
    end
    if tonumber(counted) <= tonumber(sent) then
      return {'idle', sent, counted}
    end
    local id = 'tg_' .. redis.sha1hex(ARGV[6] .. ':' .. sent .. ':' .. counted)
    redis.call('HSET', KEYS[1], 'sent', sent, 'from', sent, 'to', counted, 'id', id, 'ts', ARGV[5],
      'owner', ARGV[2], 'until', ARGV[4], 'claims', '1')
    local ttl = redis.call('PTTL', KEYS[2])
    if ttl > 0 then
      redis.call('PEXPIRE', KEYS[1], ttl + tonumber(ARGV[7]))
    end
    return {'send', sent, counted, id, ARGV[5], '1'}
    """)

    /// KEYS: [1] the cursor hash. ARGV: [1] the identifier sent. 1 when that range was pending and
    /// is now acknowledged (`sent = to`), 0 when it was not the pending range.
    static let completeScript = RedisScript("""
    local c = redis.call('HMGET', KEYS[1], 'id', 'to')
    if c[1] ~= ARGV[1] or not c[2] then
      return 0
    end
    redis.call('HSET', KEYS[1], 'sent', c[2])
    redis.call('HDEL', KEYS[1], 'from', 'to', 'id', 'ts', 'owner', 'until', 'claims')
    return 1
    """)

    /// KEYS: [1] the cursor hash. ARGV: [1] owner, [2] until (Unix ms). Sets `until` when the owner
    /// still holds the pending range; the range itself stays.
    static let releaseScript = RedisScript("""
    if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] and redis.call('HEXISTS', KEYS[1], 'from') == 1 then
      redis.call('HSET', KEYS[1], 'until', ARGV[2])
      return 1
    end
    return 0
    """)

    /// Reads a claim script reply.
    static func parseClaim(_ reply: RedisReply) throws(StoreError) -> MeterClaim {
        let parts = (reply.array ?? []).map(\.string)
        switch parts.first ?? nil {
        case "busy" where parts.count == 3:
            return .busy(owner: parts[1] ?? "", until: parts[2].flatMap { Int64($0) } ?? 0)
        case "idle" where parts.count == 3:
            guard let sent = parts[1].flatMap({ UInt64($0) }), let counted = parts[2].flatMap({ UInt64($0) }) else { break }
            return .idle(sent: sent, counted: counted)
        case "send" where parts.count == 6:
            guard let from = parts[1].flatMap({ UInt64($0) }), let to = parts[2].flatMap({ UInt64($0) }), to > from,
                  let id = parts[3], !id.isEmpty, let ts = parts[4].flatMap({ Int64($0) }), let claims = parts[5].flatMap({ Int($0) })
            else { break }
            return .send(MeterRange(from: from, to: to, identifier: id, timestamp: ts, claims: claims))
        default:
            break
        }
        throw StoreError(.corruptRecord, "meter cursor claim answered \(reply)")
    }
}
