import Foundation

/// A Lua script run with `EVALSHA`; its SHA1 is remembered after the first `SCRIPT LOAD`.
///
/// Create scripts once (e.g. as `static let`) and share them between connections: the SHA is
/// the same on every server, and `evalScript` reloads a script the server has lost.
/// ```swift
/// static let charge = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
/// let total = try connection.evalScript(charge, keys: ["tg:{k1}:calls"], args: [1]).expectInteger()
/// ```
// @unchecked Sendable: `source` is immutable and the cached SHA is only read and written under `lock`.
public final class RedisScript: @unchecked Sendable {
    /// The Lua source sent with `SCRIPT LOAD`.
    public let source: String

    private let lock = NSLock()
    private var cachedSHA: String?

    /// A script with the given Lua source; nothing is sent until it is first run.
    public init(_ source: String) {
        self.source = source
    }

    /// The SHA1 the server returned for `SCRIPT LOAD`, or `nil` before the script was first loaded.
    public var sha: String? {
        self.lock.withLock { self.cachedSHA }
    }

    func remember(sha: String) {
        self.lock.withLock { self.cachedSHA = sha }
    }
}

/// The keys and arguments of one run of a `RedisScript`, for pipelined runs.
public struct RedisScriptCall: Sendable, Hashable {
    /// The `KEYS` of the script; in Tollgate all share one hash tag so they hash to one slot.
    public var keys: [RedisArgument]
    /// The `ARGV` of the script.
    public var args: [RedisArgument]

    /// One run with the given keys and arguments.
    public init(keys: [RedisArgument] = [], args: [RedisArgument] = []) {
        self.keys = keys
        self.args = args
    }
}
