import NIOCore
import NIOHTTP1
import NIOPosix

/// A small, fast HTTP/1.1 server to put behind the proxy in tests, demos and benchmarks.
///
/// Routes (anything else answers `200 ok`):
/// - `/echo`: streams the request body back (chunked), with the request's content type.
/// - `/headers`: the request headers as `name: value` lines.
/// - `/peer`: the client's address as the upstream sees it (shows connection reuse).
/// - `/units`: `200 ok` with `Tollgate-Units` set to the request's `X-Demo-Units` header.
/// - `/bytes/<n>`: `n` bytes of `x`.
/// - `/slow/<ms>`: `200 ok` after `ms` milliseconds.
/// - `/status/<code>`: that status, empty body.
/// - `/truncate`: announces 100000 bytes, sends 1000, closes the connection.
///
/// ```swift
/// let upstream = DemoUpstream()
/// let port = try await upstream.start(host: "127.0.0.1", port: 0)
/// await upstream.shutdown()
/// ```
public actor DemoUpstream {
    private let group: MultiThreadedEventLoopGroup
    private var channel: (any Channel)?
    private var stopped = false

    /// Creates a server with `threads` event loop threads.
    public init(threads: Int = 1) {
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
    }

    /// Binds and serves; returns the bound port.
    @discardableResult
    public func start(host: String = "127.0.0.1", port: Int = 0) async throws -> Int {
        let channel = try await ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(DemoUpstreamHandler())
                }
            }
            .bind(host: host, port: port).get()
        self.channel = channel
        return channel.localAddress?.port ?? port
    }

    /// Stops serving and shuts its threads down. Safe to call more than once.
    public func shutdown() async {
        guard !self.stopped else { return }
        self.stopped = true
        try? await self.channel?.close()
        try? await self.group.shutdownGracefully()
    }
}

/// Serves one connection of `DemoUpstream`.
final class DemoUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let okBody = ByteBuffer(string: "ok\n")
    private var route = Route.ok
    private var head: HTTPRequestHead?

    private enum Route { case ok, echo, headers, peer, units, bytes(Int), slow(Int64), status(Int), truncate }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.route = Self.route(for: head.uri)
            if case .echo = self.route {
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: head.headers.first(name: "content-type") ?? "application/octet-stream")
                self.writeHead(context, .ok, headers)
            }
        case .body(let buffer):
            if case .echo = self.route {
                context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
        case .end:
            self.respond(context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    private func respond(_ context: ChannelHandlerContext) {
        let head = self.head!
        switch self.route {
        case .ok:
            self.writeFull(context, .ok, HTTPHeaders(), Self.okBody)
        case .echo:
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        case .headers:
            var text = ""
            for (name, value) in head.headers { text += "\(name): \(value)\n" }
            self.writeFull(context, .ok, HTTPHeaders([("content-type", "text/plain")]), ByteBuffer(string: text))
        case .peer:
            let peer = context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
            self.writeFull(context, .ok, HTTPHeaders(), ByteBuffer(string: peer))
        case .units:
            var headers = HTTPHeaders()
            for value in head.headers["x-demo-units"] { headers.add(name: "Tollgate-Units", value: value) }
            self.writeFull(context, .ok, headers, Self.okBody)
        case .bytes(let count):
            self.writeFull(context, .ok, HTTPHeaders(), ByteBuffer(repeating: UInt8(ascii: "x"), count: count))
        case .slow(let milliseconds):
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(milliseconds)) {
                let context = loopBound.value
                guard context.channel.isActive else { return }
                self.writeFull(context, .ok, HTTPHeaders(), Self.okBody)
            }
        case .status(let code):
            self.writeFull(context, HTTPResponseStatus(statusCode: code), HTTPHeaders(), ByteBuffer())
        case .truncate:
            var headers = HTTPHeaders()
            headers.add(name: "content-length", value: "100000")
            self.writeHead(context, .ok, headers)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(repeating: UInt8(ascii: "t"), count: 1000)))), promise: nil)
            context.flush()
            context.close(promise: nil)
        }
    }

    private func writeHead(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ headers: HTTPHeaders) {
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
    }

    private func writeFull(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ headers: HTTPHeaders, _ body: ByteBuffer) {
        var headers = headers
        headers.add(name: "content-length", value: String(body.readableBytes))
        self.writeHead(context, status, headers)
        if body.readableBytes > 0 { context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    private static func route(for uri: String) -> Route {
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        if path == "/echo" { return .echo }
        if path == "/headers" { return .headers }
        if path == "/units" { return .units }
        if path == "/peer" { return .peer }
        if path == "/truncate" { return .truncate }
        let parts = path.split(separator: "/")
        if parts.count == 2, let number = Int(parts[1]) {
            switch parts[0] {
            case "bytes": return .bytes(min(max(0, number), 64 * 1024 * 1024))
            case "slow": return .slow(Int64(min(max(0, number), 600_000)))
            case "status": return (100...599).contains(number) ? .status(number) : .ok
            default: break
            }
        }
        return .ok
    }
}

@available(*, unavailable)
extension DemoUpstreamHandler: Sendable {}
