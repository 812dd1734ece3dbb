import Testing
@testable import TollgateCollector
import TollgateStore

/// The registry entry the ingest thread reads while a payment step decodes: handed over whether
/// it arrives before or after the step asks for it, once.
@Suite struct EntryPromiseTests {
    /// What the step sees: "unread" (nil), "unknown key" (.some(nil)), or an entry.
    static func describe(_ entry: RegistryEntry??) -> String {
        switch entry {
        case .none: "unread"
        case .some(.none): "unknown"
        case .some(.some): "entry"
        }
    }

    @Test("fulfilled before the step asks: no wait; an unknown key stays unknown")
    func fulfilledFirst() async {
        let promise = PaymentCoordinator.EntryPromise()
        promise.fulfill(.some(nil))
        #expect(Self.describe(await promise.entry) == "unknown")
    }

    @Test("fulfilled after the step asks: the step resumes with it; a second fulfil is ignored")
    func fulfilledLater() async {
        let promise = PaymentCoordinator.EntryPromise()
        async let entry = promise.entry
        try? await Task.sleep(for: .milliseconds(20))
        promise.fulfill(nil)
        promise.fulfill(.some(nil))
        #expect(Self.describe(await entry) == "unread")
        #expect(Self.describe(await promise.entry) == "unread")
    }
}
