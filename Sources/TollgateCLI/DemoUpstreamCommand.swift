import ArgumentParser
import ServiceLifecycle
import TollgateSidecar

/// `tollgate demo-upstream`: a small fast HTTP service for the quickstart, tests and benchmarks.
struct DemoUpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-upstream",
        abstract: "Run the demo upstream (/echo, /units with X-Demo-Units, /bytes/N, /slow/MS, /status/CODE)."
    )

    @Option(help: "host:port to listen on.")
    var listen: String = "127.0.0.1:9000"

    @Option(help: "Event loop threads.")
    var threads: Int = 1

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw ValidationError("--listen must be host:port")
        }
        let logger = Bootstrap.run(component: "demo-upstream", logLevel: "info")
        let service = DemoUpstreamService(upstream: DemoUpstream(threads: threads), host: String(listen[..<colon]), port: port)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        ))
        try await group.run()
    }
}

/// Runs the demo upstream until graceful shutdown.
struct DemoUpstreamService: Service {
    let upstream: DemoUpstream
    let host: String
    let port: Int

    func run() async throws {
        let bound = try await upstream.start(host: host, port: port)
        print("demo upstream listening on \(host):\(bound)")
        try? await gracefulShutdown()
        await upstream.shutdown()
    }
}
