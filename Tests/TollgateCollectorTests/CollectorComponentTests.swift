import Testing

/// The parent of every suite that runs collectors in this process. They share process-wide metrics
/// (a collector's ingest loop records the connected-sidecars gauge every second), so they run one
/// at a time: `.serialized` here applies to every suite nested in an extension of this type.
@Suite("Collector components", .serialized)
enum CollectorComponentTests {}
