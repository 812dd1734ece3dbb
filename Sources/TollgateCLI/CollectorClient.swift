import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A small JSON-over-HTTP client for the collector's API, shared by the CLI commands that talk to
/// a running collector (`tollgate keys`, `tollgate usage`): one place for the URL, the bearer
/// token, timeouts and the collector's JSON errors.
///
/// ```swift
/// let client = try CollectorClient(options)
/// let keys = try await client.send("GET", "/v1/admin/keys")
/// let (report, raw) = try await client.fetch(UsageReport.self, "/v1/usage/acme", query: [("period", "d20261123")])
/// ```
struct CollectorClient {
    /// The collector's base URL, e.g. `http://127.0.0.1:7480`.
    let baseURL: URL
    /// The bearer token, if any.
    let token: String?
    /// How long one request may take.
    var timeout: TimeInterval = 10

    /// The default collector URL when neither `--collector` nor `TOLLGATE_COLLECTOR_URL` is given.
    static let defaultURL = "http://127.0.0.1:7480"

    /// A client for the collector and token `options` name (flags first, then the environment): the
    /// token is `--token`, else the first of `tokenVariables` that is set.
    init(
        _ options: CollectorOptions,
        tokenVariables: [String] = ["TOLLGATE_ADMIN_TOKEN"],
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
        let text = options.collector ?? environment["TOLLGATE_COLLECTOR_URL"] ?? Self.defaultURL
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ValidationError("--collector must be an http:// URL such as \(Self.defaultURL), got \"\(text)\"")
        }
        self.baseURL = url
        self.token = options.token ?? tokenVariables.lazy.compactMap { environment[$0] }.first
    }

    /// Sends a request with an optional JSON body and returns the decoded JSON answer; a status
    /// of 400 or above is thrown as ``CollectorClientError`` with the collector's `error` and `message`.
    @discardableResult
    func send(_ method: String, _ path: String, query: [(String, String)] = [], body: [String: Any]? = nil) async throws -> [String: Any] {
        let data = try await self.data(method, path, query: query, body: body)
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CollectorClientError(status: 200, code: "bad_response", message: "the collector did not answer with a JSON object")
        }
        return object
    }

    /// GETs `path` and decodes the answer as `T` (snake_case keys), returning it with the raw JSON
    /// object for `--json`. An answer that does not decode is a ``CollectorClientError`` `bad_response`.
    func fetch<T: Decodable>(_ type: T.Type, _ path: String, query: [(String, String)] = []) async throws -> (value: T, json: [String: Any]) {
        let data = try await self.data("GET", path, query: query, body: nil)
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CollectorClientError(status: 200, code: "bad_response", message: "the collector did not answer with a JSON object")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return (try decoder.decode(type, from: data), object)
        } catch {
            throw CollectorClientError(status: 200, code: "bad_response", message: "unexpected answer from \(path) (an older or newer collector?): \(error)")
        }
    }

    /// Sends a request and returns the body of a 2xx answer; anything else is thrown as
    /// ``CollectorClientError`` with the collector's `error` and `message` when it sent JSON.
    func data(_ method: String, _ path: String, query: [(String, String)], body: [String: Any]?) async throws -> Data {
        guard let relative = URL(string: path, relativeTo: self.baseURL),
              var components = URLComponents(url: relative, resolvingAgainstBaseURL: true) else {
            throw CollectorClientError(status: 0, code: "bad_path", message: "cannot build a URL for \(path)")
        }
        if !query.isEmpty { components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        guard let url = components.url else {
            throw CollectorClientError(status: 0, code: "bad_path", message: "cannot build a URL for \(path)")
        }
        var request = URLRequest(url: url, timeoutInterval: self.timeout)
        request.httpMethod = method
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw CollectorClientError(status: 0, code: "unreachable", message: "cannot reach the collector at \(self.baseURL.absoluteString): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        guard (200..<300).contains(status) else {
            throw CollectorClientError(
                status: status, code: object?["error"] as? String ?? "http_\(status)",
                message: object?["message"] as? String ?? String(decoding: data.prefix(200), as: UTF8.self)
            )
        }
        return data
    }

    /// `text` escaped for use as one path segment.
    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? text
    }
}

/// The collector refused a request or could not be reached.
struct CollectorClientError: Error, CustomStringConvertible {
    /// The HTTP status (0 when there was no answer).
    var status: Int
    /// The collector's `error` code.
    var code: String
    /// The collector's message.
    var message: String

    var description: String { status == 0 ? message : "\(code) (HTTP \(status)): \(message)" }
}

/// Where the collector is and how to authenticate; shared by commands that talk to a collector.
struct CollectorOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Collector base URL (default: $TOLLGATE_COLLECTOR_URL or \(CollectorClient.defaultURL)).", valueName: "url"))
    var collector: String?

    @Option(help: ArgumentHelp("Bearer token: the admin token, or for `usage` the read token (default: $TOLLGATE_ADMIN_TOKEN; `usage` tries $TOLLGATE_USAGE_TOKEN first).", valueName: "token"))
    var token: String?

    @Flag(help: "Print the collector's JSON answer instead of a table.")
    var json = false
}

/// Prints `object` as indented JSON with sorted keys.
func printJSON(_ object: Any) {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data("{}".utf8)
    print(String(decoding: data, as: UTF8.self))
}
