import Testing
import TollgateCore

@Suite("BoundedMemo")
struct BoundedMemoTests {
    struct Failure: Error {}

    @Test("a value is computed once per key until the memo fills, then everything is computed afresh")
    func computesOnceThenClears() {
        let memo = BoundedMemo<Int, String>(capacity: 2)
        var calls = 0
        func get(_ key: Int) -> String {
            memo.value(for: key) { () -> String in
                calls += 1
                return "v\(key)"
            }
        }
        #expect(get(1) == "v1" && get(1) == "v1" && calls == 1)
        #expect(get(2) == "v2" && calls == 2 && memo.count == 2)
        // Full: the third key clears the memo, so key 1 is computed again.
        #expect(get(3) == "v3" && memo.count == 1)
        #expect(get(1) == "v1" && calls == 4)
    }

    @Test("a failed computation stores nothing")
    func failureIsNotKept() throws {
        let memo = BoundedMemo<String, Int>(capacity: 8)
        #expect(throws: Failure.self) { _ = try memo.value(for: "k") { () throws(Failure) -> Int in throw Failure() } }
        #expect(memo.count == 0)
        #expect(try memo.value(for: "k") { () throws(Failure) -> Int in 7 } == 7)
    }
}
