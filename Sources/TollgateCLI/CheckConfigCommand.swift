import Foundation
import ArgumentParser
import TollgateConfig

/// `tollgate check-config`: validates a config file and prints what it holds (never secrets).
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a config file; errors name the key and line."
    )

    @OptionGroup var options: CommonOptions

    func run() throws {
        let config = try loadConfiguration(options.config)
        print("ok: \(options.config)")
        print("  plans: \(config.plans.keys.sorted().joined(separator: ", "))")
        print("  keys:  \(config.keys.count) (stored as SHA-256)")
        print("  x402:  \(config.x402.map { "\($0.network) pay to \($0.payTo)" } ?? "off")")
    }
}

/// Loads the config; a `ConfigError` prints as one line naming the file, line and key.
func loadConfiguration(_ path: String) throws -> TollgateConfiguration {
    do {
        return try TollgateConfiguration.load(path: path)
    } catch {
        // ArgumentParser maps every other error to exit code 1; systemd's RestartPreventExitStatus
        // needs EX_CONFIG to tell "fix the file" from "try again".
        FileHandle.standardError.write(Data("Error: \(InvalidConfiguration(error: error))\n".utf8))
        throw ExitCode(78)
    }
}

/// A config error as the CLI reports it: no usage text, exit code 78 (EX_CONFIG).
struct InvalidConfiguration: Error, CustomStringConvertible {
    let error: ConfigError
    var description: String { "invalid configuration: \(error)" }
}
