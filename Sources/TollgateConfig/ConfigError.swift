/// The one error type of TollgateConfig: which key is wrong, where, and why.
///
/// ```
/// tollgate.yaml:14:16: plans.free.features.api_call.limit: expected a non-negative integer, got "ten"
/// ```
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Coarse kinds of configuration failure.
    public enum Code: String, Hashable, Sendable {
        /// The file could not be read.
        case unreadable
        /// The text is not YAML.
        case syntax
        /// A required key is absent.
        case missingKey
        /// A key this version does not know (usually a typo).
        case unknownKey
        /// A value has the wrong type or shape.
        case invalidValue
        /// Values that are fine alone contradict each other (a key names a plan that is not there).
        case inconsistent
        /// A `*_env` key names an environment variable that is not set.
        case missingEnvironment
    }

    /// The kind of failure.
    public var code: Code
    /// The dotted path of the offending key, e.g. `plans.free.features.api_call.limit`.
    public var path: String
    /// `line:column` in the file, when known.
    public var location: String?
    /// Why the value is refused. Never contains a secret's value.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, path: String, location: String? = nil, _ message: String) {
        self.code = code
        self.path = path
        self.location = location
        self.message = message
    }

    public var description: String {
        let place = [location, path.isEmpty ? nil : path].compactMap { $0 }.joined(separator: ": ")
        return place.isEmpty ? message : "\(place): \(message)"
    }
}
