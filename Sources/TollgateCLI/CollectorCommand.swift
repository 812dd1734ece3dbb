import ArgumentParser
import Logging
import ServiceLifecycle
import TollgateCollector
import TollgateConfig
import TollgateRedis

/// `tollgate collector`: ingest over ZeroMQ, Redis reconciliation, and the HTTP API.
struct CollectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collector",
        abstract: "Run a collector: ROUTER ingest, Redis, PUB quota updates, usage and admin API, /metrics, /healthz."
    )

    @OptionGroup var options: CommonOptions

    func run() async throws {
        let config = try loadConfiguration(options.config)
        let logger = Bootstrap.run(component: "collector", logLevel: options.logLevel)
        let collector = CollectorService(configuration: config, logger: logger)
        let readerClient = RedisClient(configuration: collector.ingestConfiguration.redis)
        let reader = RedisUsageReader(client: readerClient)
        var admin = AdminAPI(token: config.collector.adminToken, client: readerClient, publisher: collector.publisher)
        admin.moneyDecimals = config.x402?.decimals ?? 6
        admin.acceptsPayments = config.x402 != nil
        if config.collector.adminToken == nil {
            logger.notice("admin API disabled: no collector.admin_token or admin_token_env")
        }
        let usageTokens = [config.collector.adminToken, config.collector.usageToken].compactMap { $0 }
        if usageTokens.isEmpty {
            logger.notice("usage API open without a token: set collector.usage_token_env or admin_token_env to protect it")
        }
        let dashboard = Dashboard(
            source: DashboardSource(
                collectorID: config.collector.id, client: readerClient, fleet: collector.fleet, ingestRate: collector.ingestRate,
                asset: .init(name: config.x402?.extraName, decimals: config.x402?.decimals ?? 6)
            ),
            token: config.collector.dashboardToken
        )
        if config.collector.dashboardToken == nil {
            logger.notice("dashboard open without a token: anyone who reaches collector.http sees every key's usage (set collector.dashboard_token_env to guard it)")
        }
        let http = try CollectorHTTP.makeApplication(
            listen: config.collector.httpListen,
            reader: reader,
            keyNames: Dictionary(config.keys.map { ($0.name, $0.id) }, uniquingKeysWith: { first, _ in first }),
            admin: admin,
            payments: collector.ingestConfiguration.payments,
            usageTokens: usageTokens,
            currency: BillingCurrency(x402: config.x402),
            dashboard: dashboard,
            health: { await reader.ping() },
            ready: { [readiness = collector.readiness] in readiness.isReady },
            renderMetrics: { Bootstrap.renderMetrics() },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: collector), .init(service: http)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        logger.info("collector starting", metadata: [
            "tollgate.collector": "\(config.collector.id)", "tollgate.router": "\(config.collector.routerBind)",
            "tollgate.http": "\(config.collector.httpListen)", "tollgate.publish": "\(config.collector.publishBind)",
        ])
        do {
            try await group.run()
        } catch {
            await readerClient.shutdown()
            throw error
        }
        await readerClient.shutdown()
    }
}
