/// Where `*_env` keys look their secrets up; the process environment in production, a dictionary
/// in tests.
public struct ConfigEnvironment: Sendable {
    /// The variables.
    public var variables: [String: String]

    /// An environment with exactly these variables.
    public init(_ variables: [String: String]) { self.variables = variables }

    /// The process's environment.
    public static var process: ConfigEnvironment {
        ConfigEnvironment(ProcessEnvironment.current())
    }
}

extension ConfigMapping {
    /// Reads `name` or `name_env` (never both): the value itself, or the environment variable it names.
    ///
    /// Secrets belong in `_env`; the error text never contains the value.
    func secret(_ name: String, in environment: ConfigEnvironment) throws(ConfigError) -> String? {
        let direct = optional(name)
        let indirect = optional("\(name)_env")
        switch (direct, indirect) {
        case (nil, nil):
            return nil
        case (let node?, nil):
            return try node.string()
        case (nil, let node?):
            let variable = try node.nonEmptyString()
            guard let value = environment.variables[variable] else {
                throw node.error(.missingEnvironment, "environment variable \(variable) is not set")
            }
            return value
        case (_, let node?):
            throw node.error(.inconsistent, "set \(name) or \(name)_env, not both")
        }
    }
}
