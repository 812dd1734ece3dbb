import Foundation
import Testing
import TollgateCore
@testable import TollgateSidecar

/// Unknown keys are cached briefly (a flood of them must not reach the collector each time), but
/// never for ever: a flood of made-up keys must not grow the sidecar without bound.
@Suite("Key directory: unknown answers are bounded")
struct KeyDirectoryNegativeCacheTests {
    static func keyID(_ n: Int) -> String { String(format: "%064x", n) }

    @Test("beyond the cap the oldest unknown answers are forgotten; known keys stay")
    func capped() {
        let cache = KeyCache()
        let storage = KeyDirectoryStorage(cache: cache, maxUnknown: 100)
        let known = KnownKey(id: Self.keyID(999_999), name: "real", plan: "free", effectivePlan: nil, gatePlan: nil, version: 1)
        storage.store(known.id, .known(known))
        for n in 0..<1_000 {
            storage.store(Self.keyID(n), .unknown(until: .now + .seconds(5)))
        }
        #expect(storage.unknownCount == 100)
        #expect(cache.count == 101)
        // The newest are still answered from the cache, the oldest are asked again.
        if case .unknown? = storage.entry(Self.keyID(999)) {} else { Issue.record("the newest unknown answer was lost") }
        #expect(storage.entry(Self.keyID(0)) == nil)
        if case .known? = storage.entry(known.id) {} else { Issue.record("a known key was evicted") }
    }

    @Test("expired unknown answers are forgotten as new ones arrive, not only skipped")
    func expired() {
        let cache = KeyCache()
        let storage = KeyDirectoryStorage(cache: cache, maxUnknown: 10_000)
        for n in 0..<500 {
            storage.store(Self.keyID(n), .unknown(until: .now - .seconds(1)))
        }
        storage.store(Self.keyID(10_000), .unknown(until: .now + .seconds(5)))
        #expect(storage.unknownCount == 1)
        #expect(cache.count == 1)
    }

    @Test("a key that became known is not dropped when its old unknown answer ages out")
    func becameKnown() {
        let cache = KeyCache()
        let storage = KeyDirectoryStorage(cache: cache, maxUnknown: 2)
        storage.store(Self.keyID(1), .unknown(until: .now + .seconds(5)))
        let key = KnownKey(id: Self.keyID(1), name: "new", plan: "free", effectivePlan: nil, gatePlan: nil, version: 2)
        storage.store(key.id, .known(key))
        for n in 2..<10 { storage.store(Self.keyID(n), .unknown(until: .now + .seconds(5))) }
        if case .known? = storage.entry(Self.keyID(1)) {} else { Issue.record("a known key was evicted with its old unknown answer") }
    }
}
