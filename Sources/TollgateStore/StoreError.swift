import TollgateRedis

/// The one error type of TollgateStore: what failed, why, and the Redis error behind it if any.
///
/// ```swift
/// do { try store.apply(batch, on: connection) }
/// catch where error.code == .invalidInput { /* refuse the batch: retrying cannot help */ }
/// catch { /* Redis is unavailable: do not acknowledge, the sender retries */ }
/// ```
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The input broke a rule (empty id, forbidden character, counter out of range...); nothing was written.
        case invalidInput
        /// Redis could not be reached or broke the connection; the write may or may not have happened.
        case unavailable
        /// Redis answered with an error or an unexpected reply (e.g. OOM, READONLY).
        case redis
        /// A stored record could not be read back (bad JSON, missing plan).
        case corruptRecord
    }

    /// What kind of failure this is.
    public var code: Code
    /// Human-readable detail, safe to log.
    public var message: String
    /// The Redis error behind it, if one.
    public var redisError: RedisError?

    /// An error with the given parts.
    public init(_ code: Code, _ message: String, redisError: RedisError? = nil) {
        self.code = code
        self.message = message
        self.redisError = redisError
    }

    /// Wraps a Redis error: connection breaks are `.unavailable`, the rest `.redis`.
    init(_ error: RedisError, while doing: String) {
        self.init(error.breaksConnection || error.code == .closed ? .unavailable : .redis, "\(doing): \(error)", redisError: error)
    }

    /// E.g. `StoreError.invalidInput: aggregate 3: feature is empty`.
    public var description: String { "StoreError.\(self.code.rawValue): \(self.message)" }
}

extension StoreError {
    /// Runs `body`, turning any `RedisError` into a `StoreError`.
    static func wrapping<T>(_ doing: String, _ body: () throws -> T) throws(StoreError) -> T {
        do {
            return try body()
        } catch let error as StoreError {
            throw error
        } catch let error as RedisError {
            throw StoreError(error, while: doing)
        } catch {
            throw StoreError(.redis, "\(doing): \(error)")
        }
    }
}
