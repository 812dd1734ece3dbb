import ArgumentParser

/// The `tollgate` executable: thin on purpose. It parses options and config, bootstraps logging
/// and metrics once, and runs the component's services in a `ServiceGroup`; the wiring lives in
/// the library targets so tests can start the same things in-process.
@main
struct Tollgate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate",
        abstract: "Meter API traffic, enforce quotas across a fleet, accept x402 payments.",
        subcommands: [CollectorCommand.self, SidecarCommand.self, KeysCommand.self, UsageCommand.self, DemoUpstreamCommand.self,
                      CheckConfigCommand.self, MetricsCatalogueCommand.self, CurveKeypairCommand.self]
    )
}

/// Options every subcommand that reads the config file shares.
struct CommonOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: ArgumentHelp("Path of the YAML config file.", valueName: "path"))
    var config: String = "tollgate.yaml"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"
}
