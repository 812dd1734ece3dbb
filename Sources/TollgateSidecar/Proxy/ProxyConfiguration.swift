import NIOCore
import NIOPosix
import TollgateConfig
import TollgateCore

/// Settings of the reverse proxy: where it listens, the one upstream it forwards to, and its limits.
///
/// ```swift
/// var configuration = try ProxyConfiguration(settings: sidecarSettings)
/// configuration.routes = FeatureRoutes([FeatureRoute(prefix: "/v1/chat", feature: "tokens")])
/// ```
public struct ProxyConfiguration: Sendable {
    /// Host to listen on.
    public var listenHost: String = "127.0.0.1"
    /// Port to listen on; 0 picks a free one (read it from `ProxyServer.start()`).
    public var listenPort: Int = 8080
    /// Upstream host.
    public var upstreamHost: String = "127.0.0.1"
    /// Upstream port.
    public var upstreamPort: Int = 9000
    /// An extra header that carries the API key, besides `Authorization: Bearer` and `X-API-Key`.
    public var keyHeader: String?
    /// Plan for callers without a key (principal `anon:<client IP>`); nil refuses them with 401.
    public var anonymousPlan: String?
    /// Route prefixes to features; longest prefix wins, `api_call` otherwise.
    public var routes: FeatureRoutes = FeatureRoutes()
    /// Largest request body forwarded; a larger one gets 413.
    public var maxRequestBodyBytes: Int = 10 * 1024 * 1024
    /// Largest single request header field (name + value); larger gets 431.
    public var maxHeaderFieldBytes: Int = 64 * 1024
    /// Largest request header block; larger gets 431.
    public var maxHeaderListBytes: Int = 64 * 1024
    /// How long to wait for a TCP connection to the upstream before answering 502.
    public var upstreamConnectTimeout: TimeAmount = .seconds(3)
    /// How long the upstream may stay silent while a response is due before answering 504.
    public var upstreamReadTimeout: TimeAmount = .seconds(30)
    /// Idle keep-alive upstream connections kept per event loop; extra ones are closed on release.
    public var maxIdleUpstreamConnectionsPerLoop: Int = 128
    /// How long the first request of a key never seen waits for `PrincipalResolver.resolve`.
    public var keyResolveTimeout: TimeAmount = .seconds(2)
    /// How long graceful shutdown lets in-flight requests run before closing them.
    public var shutdownGracePeriod: TimeAmount = .seconds(10)
    /// Event loop threads when the proxy makes its own group.
    public var eventLoopThreads: Int = System.coreCount

    /// Defaults: listen on 127.0.0.1:8080, upstream 127.0.0.1:9000.
    public init() {}

    /// Takes listen address, upstream URL, key header and anonymous plan from the sidecar's config.
    public init(settings: SidecarSettings) throws(ProxyError) {
        self.init()
        (self.listenHost, self.listenPort) = try Self.hostPort(settings.listen, what: "listen")
        var upstream = Substring(settings.upstream)
        guard upstream.hasPrefix("http://") else {
            throw ProxyError(.invalidConfiguration, "upstream must be an http:// URL, got \"\(settings.upstream)\"")
        }
        upstream = upstream.dropFirst("http://".count)
        if let slash = upstream.firstIndex(of: "/") {
            guard upstream[slash...] == "/" else {
                throw ProxyError(.invalidConfiguration, "upstream must not have a path, got \"\(settings.upstream)\"")
            }
            upstream = upstream[..<slash]
        }
        (self.upstreamHost, self.upstreamPort) = try Self.hostPort(String(upstream), what: "upstream", defaultPort: 80)
        self.keyHeader = settings.keyHeader
        self.anonymousPlan = settings.anonymousPlan
        self.routes = FeatureRoutes(settings.routes.map { FeatureRoute(prefix: $0.prefix, feature: FeatureName($0.feature)) })
        self.maxRequestBodyBytes = settings.maxRequestBodyBytes
        self.upstreamReadTimeout = .milliseconds(Int64(settings.upstreamTimeoutMs))
        if let threads = settings.threads { self.eventLoopThreads = threads }
    }

    static func hostPort(_ text: String, what: String, defaultPort: Int? = nil) throws(ProxyError) -> (String, Int) {
        guard let colon = text.lastIndex(of: ":") else {
            if let defaultPort, !text.isEmpty { return (text, defaultPort) }
            throw ProxyError(.invalidConfiguration, "\(what): expected host:port, got \"\(text)\"")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw ProxyError(.invalidConfiguration, "\(what): expected host:port, got \"\(text)\"")
        }
        return (host, port)
    }
}

/// One route prefix and the feature its calls count against.
public struct FeatureRoute: Sendable, Hashable {
    /// Path prefix, e.g. `/v1/chat`; matched against the request path (query excluded).
    public var prefix: String
    /// The feature calls under the prefix count against.
    public var feature: FeatureName

    /// Creates a route.
    public init(prefix: String, feature: FeatureName) {
        self.prefix = prefix
        self.feature = feature
    }
}

/// Maps a request path to a feature: the longest matching prefix wins, `defaultFeature` otherwise.
///
/// Threading: immutable, safe anywhere. Matching compares UTF-8 bytes and allocates nothing.
public struct FeatureRoutes: Sendable, Hashable {
    /// Routes, longest prefix first.
    public let routes: [FeatureRoute]
    /// The feature when no prefix matches.
    public let defaultFeature: FeatureName

    /// Creates a table; order does not matter.
    public init(_ routes: [FeatureRoute] = [], defaultFeature: FeatureName = .apiCall) {
        self.routes = routes.sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }
        self.defaultFeature = defaultFeature
    }

    /// The feature for a request URI (path plus optional query).
    public func feature(forURI uri: String) -> FeatureName {
        if self.routes.isEmpty { return self.defaultFeature }
        var uri = uri
        return uri.withUTF8 { bytes in
            let pathEnd = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.endIndex
            for route in self.routes {
                var prefix = route.prefix
                let matched = prefix.withUTF8 { p in
                    p.count <= pathEnd && memcmpEqual(p, bytes, count: p.count)
                }
                if matched { return route.feature }
            }
            return self.defaultFeature
        }
    }
}

@inline(__always)
private func memcmpEqual(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>, count: Int) -> Bool {
    var i = 0
    while i < count {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}
