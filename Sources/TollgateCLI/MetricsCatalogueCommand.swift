import ArgumentParser

/// `tollgate metrics-catalogue`: prints every metric Tollgate exports (type, labels, meaning) as
/// Markdown; docs/metrics.md holds this output.
struct MetricsCatalogueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics-catalogue",
        abstract: "Print every metric the collector and the sidecar export, as Markdown tables."
    )

    func run() {
        print(MetricsCatalogue.markdown(), terminator: "")
    }
}
