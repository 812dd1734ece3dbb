import ArgumentParser
import ServiceLifecycle
import TollgateSidecar

/// `tollgate sidecar`: the metering reverse proxy beside one service instance.
struct SidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sidecar",
        abstract: "Run a sidecar: reverse proxy, metering, uplink to the collectors, admin API."
    )

    @OptionGroup var options: CommonOptions

    func run() async throws {
        let config = try loadConfiguration(options.config)
        let logger = Bootstrap.run(component: "sidecar", logLevel: options.logLevel)
        let sidecar = try SidecarRuntime(configuration: config, renderMetrics: { Bootstrap.renderMetrics() }, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: sidecar.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        ))
        logger.info("sidecar starting", metadata: [
            "tollgate.sidecar": "\(config.sidecar.id)", "tollgate.listen": "\(config.sidecar.listen)",
            "tollgate.upstream": "\(config.sidecar.upstream)",
        ])
        do {
            try await group.run()
        } catch {
            sidecar.close()
            throw error
        }
        sidecar.close()
    }
}
