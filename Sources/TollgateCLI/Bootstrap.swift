import Logging
import Metrics
import Prometheus

/// Process-wide set-up done once per executable: logging and the Prometheus metrics backend.
enum Bootstrap {
    /// The registry `/metrics` endpoints render.
    static let registry = PrometheusCollectorRegistry()

    /// Bootstraps logging at `level` and swift-metrics with Prometheus (help text from
    /// `MetricsCatalogue`); returns the root logger.
    static func run(component: String, logLevel: String) -> Logger {
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let factory = CataloguedMetricsFactory(registry: registry, durationBuckets: [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        ])
        MetricsSystem.bootstrap(factory)
        var logger = Logger(label: "tollgate.\(component)")
        logger.logLevel = level
        return logger
    }

    /// Renders every metric in the Prometheus text format.
    static func renderMetrics() -> String { registry.emitToString() }
}
