import TollgateWire

/// Where collector components raise quota updates for the fleet (the PUB socket's publisher).
///
/// Threading: `publish` is called from the ingest thread and from HTTP handlers; it must not block.
public protocol QuotaUpdateSink: Sendable {
    /// Queues `update` for every sidecar subscribed to its key (or to `u.*`).
    func publish(_ update: Tollgate_V1_QuotaUpdate)
}
