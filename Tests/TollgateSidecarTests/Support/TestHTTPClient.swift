import NIOCore
import NIOHTTP1
import NIOPosix

/// A response as a test client saw it.
struct TestResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: ByteBuffer

    var text: String { String(buffer: body) }
}

/// A request for `TestHTTPClient`.
struct TestRequest: Sendable {
    var method: HTTPMethod = .GET
    var uri: String = "/"
    var headers: [(String, String)] = []
    /// Body parts; sent chunked unless a content-length header is given.
    var body: [ByteBuffer] = []

    init(_ method: HTTPMethod = .GET, _ uri: String = "/", headers: [(String, String)] = [], body: [ByteBuffer] = []) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
    }
}

struct ConnectionClosed: Error {}

/// An HTTP/1.1 keep-alive client over one NIO connection; requests may be pipelined.
struct TestHTTPClient: Sendable {
    let channel: any Channel

    static func connect(port: Int, group: any EventLoopGroup) async throws -> TestHTTPClient {
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector())
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return TestHTTPClient(channel: channel)
    }

    /// Sends one request and waits for its response.
    func send(_ request: TestRequest) async throws -> TestResponse {
        try await self.pipeline([request])[0]
    }

    /// Writes all requests back to back, then waits for their responses in order.
    func pipeline(_ requests: [TestRequest]) async throws -> [TestResponse] {
        let channel = self.channel
        let futures = try await channel.eventLoop.submit { () -> [EventLoopFuture<TestResponse>] in
            let collector = try channel.pipeline.syncOperations.handler(type: ResponseCollector.self)
            var futures: [EventLoopFuture<TestResponse>] = []
            for request in requests {
                futures.append(collector.expectResponse(channel.eventLoop))
                var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.uri)
                head.headers.add(name: "host", value: "test.local")
                for (name, value) in request.headers { head.headers.add(name: name, value: value) }
                if !request.body.isEmpty, !head.headers.contains(name: "content-length") {
                    head.headers.add(name: "transfer-encoding", value: "chunked")
                }
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                for part in request.body { channel.write(HTTPClientRequestPart.body(.byteBuffer(part)), promise: nil) }
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            }
            return futures
        }.get()
        var responses: [TestResponse] = []
        for future in futures { responses.append(try await future.get()) }
        return responses
    }

    func close() async {
        try? await self.channel.close()
    }
}

/// Collects response parts into whole responses, handed to waiters in order.
final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var waiters = CircularBuffer<EventLoopPromise<TestResponse>>()
    private var current: TestResponse?

    func expectResponse(_ eventLoop: any EventLoop) -> EventLoopFuture<TestResponse> {
        let promise = eventLoop.makePromise(of: TestResponse.self)
        self.waiters.append(promise)
        return promise.futureResult
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            if head.status.code >= 200 { self.current = TestResponse(status: head.status, headers: head.headers, body: ByteBuffer()) }
        case .body(var buffer):
            self.current?.body.writeBuffer(&buffer)
        case .end:
            if let response = self.current, !self.waiters.isEmpty {
                self.current = nil
                self.waiters.removeFirst().succeed(response)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        while !self.waiters.isEmpty { self.waiters.removeFirst().fail(ConnectionClosed()) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Raw bytes over TCP: for requests a real client would never send.
struct RawTCPClient: Sendable {
    let channel: any Channel
    let received: EventLoopFuture<ByteBuffer>

    static func connect(port: Int, group: any EventLoopGroup) async throws -> RawTCPClient {
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: ByteBuffer.self)
        let channel = try await ClientBootstrap(group: eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteCollector(promise: promise))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawTCPClient(channel: channel, received: promise.futureResult)
    }

    func write(_ text: String) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(string: text))
    }

    func write(_ buffer: ByteBuffer) async throws {
        try await self.channel.writeAndFlush(buffer)
    }

    /// Everything the server sent until it closed the connection.
    func readUntilClose() async throws -> String {
        String(buffer: try await self.received.get())
    }

    func close() async {
        try? await self.channel.close()
    }
}

final class ByteCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let promise: EventLoopPromise<ByteBuffer>
    private var bytes = ByteBuffer()

    init(promise: EventLoopPromise<ByteBuffer>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        self.bytes.writeBuffer(&buffer)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise.succeed(self.bytes)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
