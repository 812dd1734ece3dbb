import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix

/// The collector's one HTTP client for the services it calls out to: the x402 facilitator and the
/// Stripe meter API.
///
/// AsyncHTTPClient on SwiftNIO: connections are kept alive and pooled per host, `https` is TLS
/// (NIOSSL, full certificate verification), and a call is bounded as a whole by a deadline, connect
/// included. Redirects are not followed (a payment is POSTed where it was configured to go, or
/// nowhere) and bodies are not decompressed. A response body over `maxBody` is refused, not read.
///
/// Threading: a namespace over one shared `HTTPClient` on NIO's singleton event loop group; calls
/// may come from any thread or task. The client lives as long as the process and is never shut down.
///
/// ```swift
/// switch await OutboundHTTP.post(url, headers: ["Content-Type": "application/json"], body: bytes, timeout: .seconds(5)) {
/// case .success(let answer): print(answer.status, answer.body.count)
/// case .failure(let failure): print(failure)
/// }
/// ```
enum OutboundHTTP {
    /// What came back.
    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// Why nothing usable came back.
    enum Failure: Error, Sendable, Hashable {
        /// The URL does not parse, or is not http/https.
        case badURL
        /// The deadline passed (connect, or waiting for the answer).
        case timeout
        /// No connection, or it broke.
        case unreachable
        /// The answer's body is longer than the caller accepts.
        case tooLarge
    }

    /// Bodies the collector reads are small JSON documents; 1 MiB is far beyond any honest one.
    static let defaultMaxBody = 1 << 20

    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(10), read: .seconds(60)),
            connectionPool: .init(idleTimeout: .seconds(60)),
            decompression: .disabled
        )
        configuration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()

    /// POSTs `body` to `url` and reads the whole answer, all within `timeout`.
    static func post(_ url: String, headers: HTTPHeaders, body: [UInt8], timeout: Duration,
                     maxBody: Int = defaultMaxBody) async -> Result<Answer, Failure> {
        await withCheckedContinuation { continuation in
            call(url, method: .POST, headers: headers, body: body, timeout: timeout, maxBody: maxBody) { continuation.resume(returning: $0) }
        }
    }

    /// GETs `url` and reads the whole answer, all within `timeout`.
    static func get(_ url: String, headers: HTTPHeaders = [:], timeout: Duration,
                    maxBody: Int = defaultMaxBody) async -> Result<Answer, Failure> {
        await withCheckedContinuation { continuation in
            call(url, method: .GET, headers: headers, body: nil, timeout: timeout, maxBody: maxBody) { continuation.resume(returning: $0) }
        }
    }

    /// Starts a call from any thread and returns at once; `completion` runs once, on the client's
    /// event loop, with the answer. No task is started: a thread that owns a socket (the ingest
    /// loop) starts the call and gets the answer back without a hop through the task pool.
    static func call(_ url: String, method: HTTPMethod, headers: HTTPHeaders, body: [UInt8]?, timeout: Duration,
                     maxBody: Int = defaultMaxBody, completion: @escaping @Sendable (Result<Answer, Failure>) -> Void) {
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: url, method: method, headers: headers, body: body.map { .bytes($0) })
        } catch {
            completion(.failure(.badURL))
            return
        }
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let accumulator = ResponseAccumulator(request: request, maxBodySize: maxBody)
        client.execute(request: request, delegate: accumulator, deadline: deadline).futureResult.whenComplete { result in
            switch result {
            case .success(let response):
                let bytes = response.body.map { Array($0.readableBytesView) } ?? []
                completion(.success(Answer(status: Int(response.status.code), headers: response.headers, body: bytes)))
            case .failure(let error as HTTPClientError):
                completion(.failure(error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout ? .timeout : .unreachable))
            case .failure(is ResponseAccumulator.ResponseTooBigError):
                completion(.failure(.tooLarge))
            case .failure:
                completion(.failure(.unreachable))
            }
        }
    }
}
