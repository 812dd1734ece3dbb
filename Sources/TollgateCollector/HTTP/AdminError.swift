import Foundation
import Hummingbird
import NIOCore
import TollgateConfig
import TollgateStore

/// An admin API refusal: the HTTP status, a stable `error` code and a message for people.
struct AdminError: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    /// Any error a handler threw, as the API reports it.
    init(_ error: any Error) {
        switch error {
        case let error as AdminError:
            self = error
        case let error as StoreError:
            switch error.code {
            case .invalidInput: self.init(.badRequest, "invalid_request", error.message)
            case .unavailable, .redis: self.init(.serviceUnavailable, "redis_unavailable", error.message)
            case .corruptRecord: self.init(.internalServerError, "corrupt_record", error.message)
            }
        case let error as ConfigError:
            self.init(.badRequest, "invalid_plan", error.description)
        case is NIOTooManyBytesError:
            self.init(.contentTooLarge, "body_too_large", "the request body is larger than the admin API accepts")
        case let error as DecodingError:
            self.init(.badRequest, "bad_json", Self.describe(error))
        default:
            self.init(.internalServerError, "internal", "\(error)")
        }
    }

    var response: Response { self.response(realm: "tollgate-admin") }

    /// The JSON answer; a 401 names `realm` in `WWW-Authenticate`.
    func response(realm: String) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if self.status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"\(realm)\"" }
        return AdminJSON.response(self.status, ["error": self.code, "message": self.message], headers: headers)
    }

    /// `limits.api_call: expected a non-negative integer`, from a JSONDecoder error.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let text = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return text.isEmpty ? "body" : text
        }
        func expected(_ type: Any.Type) -> String {
            switch type {
            case is UInt64.Type, is Optional<UInt64>.Type: "a non-negative integer"
            case is String.Type, is Optional<String>.Type: "a string"
            case is Bool.Type: "true or false"
            default: "a value of type \(type)"
            }
        }
        switch error {
        case .typeMismatch(let type, let context): return "\(path(context)): expected \(expected(type))"
        case .valueNotFound(let type, let context): return "\(path(context)): expected \(expected(type)), got null"
        case .keyNotFound(let key, let context):
            return "\(path(context) == "body" ? "" : path(context) + ".")\(key.stringValue) is required"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "the body is not valid JSON" : "\(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// JSON in and out for the admin API.
enum AdminJSON {
    /// A JSON response of `object` (sorted keys).
    static func response(_ status: HTTPResponse.Status, _ object: [String: Any], headers: HTTPFields = [.contentType: "application/json"]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Decodes a JSON object into `T`, refusing fields outside `allowed` (a typo is an error, not a no-op).
    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], allowed: Set<String>) throws -> T {
        let data = Data(bytes.isEmpty ? Array("{}".utf8) : bytes)
        let fields = try JSONDecoder().decode(FieldNames.self, from: data).names
        if let unknown = fields.subtracting(allowed).sorted().first {
            throw AdminError(.badRequest, "unknown_field", "unknown field \"\(unknown)\" (expected: \(allowed.sorted().joined(separator: ", ")))")
        }
        // No key strategy: it would rewrite dictionary keys (feature names) too.
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch DecodingError.dataCorrupted(let context) {
            // The body parsed as JSON above, so this is a value out of range (a negative count).
            let place = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw AdminError(.badRequest, "invalid_request", (place.isEmpty ? "" : "\(place): ") + context.debugDescription)
        }
    }

    /// The field names of a JSON object; anything but an object is refused.
    struct FieldNames: Decodable {
        var names: Set<String>

        init(from decoder: any Decoder) throws {
            guard let container = try? decoder.container(keyedBy: AnyKey.self) else {
                throw AdminError(.badRequest, "bad_json", "the body must be a JSON object")
            }
            self.names = Set(container.allKeys.map(\.stringValue))
        }
    }

    /// A limit in `PUT .../limits`: a non-negative integer, or null to clear the override.
    struct Limit: Decodable {
        var value: UInt64?

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self.value = nil
                return
            }
            guard let value = try? container.decode(UInt64.self) else {
                let feature = decoder.codingPath.last?.stringValue ?? "limit"
                throw AdminError(.badRequest, "bad_limit", "the limit of \(feature) must be a non-negative integer or null")
            }
            self.value = value
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
