import Foundation

/// Reads the process environment; kept apart so the rest of the module is testable without it.
enum ProcessEnvironment {
    static func current() -> [String: String] { ProcessInfo.processInfo.environment }
}
