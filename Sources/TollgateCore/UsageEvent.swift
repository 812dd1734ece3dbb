/// The class of an HTTP response status.
public enum StatusClass: String, Sendable, Hashable, Codable, CaseIterable {
    /// 1xx (e.g. 101 Switching Protocols, the final status of an upgraded connection).
    case informational = "1xx"
    /// 2xx.
    case success = "2xx"
    /// 3xx.
    case redirection = "3xx"
    /// 4xx.
    case clientError = "4xx"
    /// 5xx.
    case serverError = "5xx"

    /// The class of `statusCode`, or nil outside 100...599.
    public init?(statusCode: Int) {
        switch statusCode {
        case 100...199: self = .informational
        case 200...299: self = .success
        case 300...399: self = .redirection
        case 400...499: self = .clientError
        case 500...599: self = .serverError
        default: return nil
        }
    }
}

/// One metered call (or one `report`) as the sidecar observed it.
public struct UsageEvent: Sendable, Hashable, Codable {
    /// The API key id.
    public var key: String
    /// The feature the units count against.
    public var feature: FeatureName
    /// Units consumed (1 for a plain call; e.g. 532 for `Tollgate-Units: tokens=532`).
    public var units: UInt64
    /// The response's status class.
    public var statusClass: StatusClass
    /// Time from request to response.
    public var latency: Duration
    /// Request body bytes.
    public var requestBytes: UInt64
    /// Response body bytes.
    public var responseBytes: UInt64
    /// The client's idempotency key, if it sent one; repeats within the aggregator's window are dropped.
    public var idempotencyKey: String?
    /// When the call happened; decides its period.
    public var at: Timestamp
    /// Units admitted against a lease the sidecar holds (strict mode); they settle that lease.
    /// Zero for calls admitted without one (fail-open, optimistic mode, uncapped overage).
    public var leasedUnits: UInt64 = 0

    /// Creates an event.
    public init(
        key: String, feature: FeatureName = .apiCall, units: UInt64 = 1, statusClass: StatusClass = .success,
        latency: Duration = .zero, requestBytes: UInt64 = 0, responseBytes: UInt64 = 0, idempotencyKey: String? = nil, at: Timestamp
    ) {
        self.key = key
        self.feature = feature
        self.units = units
        self.statusClass = statusClass
        self.latency = latency
        self.requestBytes = requestBytes
        self.responseBytes = responseBytes
        self.idempotencyKey = idempotencyKey
        self.at = at
    }
}

/// Call counts per status class.
public struct StatusCounts: Sendable, Hashable, Codable {
    /// 1xx responses.
    public var informational: UInt64 = 0
    /// 2xx responses.
    public var success: UInt64 = 0
    /// 3xx responses.
    public var redirection: UInt64 = 0
    /// 4xx responses.
    public var clientError: UInt64 = 0
    /// 5xx responses.
    public var serverError: UInt64 = 0

    /// Creates counts, zero by default.
    public init(informational: UInt64 = 0, success: UInt64 = 0, redirection: UInt64 = 0, clientError: UInt64 = 0, serverError: UInt64 = 0) {
        self.informational = informational
        self.success = success
        self.redirection = redirection
        self.clientError = clientError
        self.serverError = serverError
    }

    /// The count for one class.
    public subscript(_ c: StatusClass) -> UInt64 {
        get {
            switch c {
            case .informational: informational
            case .success: success
            case .redirection: redirection
            case .clientError: clientError
            case .serverError: serverError
            }
        }
        set {
            switch c {
            case .informational: informational = newValue
            case .success: success = newValue
            case .redirection: redirection = newValue
            case .clientError: clientError = newValue
            case .serverError: serverError = newValue
            }
        }
    }
}

/// Usage of one key and feature in one period, summed over events: what a batch carries.
public struct UsageDelta: Sendable, Hashable, Codable {
    /// The API key id.
    public var key: String
    /// The feature.
    public var feature: FeatureName
    /// The period id the events fell in.
    public var periodID: String
    /// Events (calls or reports) counted.
    public var calls: UInt64
    /// Units summed.
    public var units: UInt64
    /// Calls per status class.
    public var statuses: StatusCounts
    /// Request bytes summed.
    public var requestBytes: UInt64
    /// Response bytes summed.
    public var responseBytes: UInt64
    /// Latency summed, in nanoseconds (mean = total / calls).
    public var latencyTotalNanoseconds: UInt64
    /// The largest single latency, in nanoseconds.
    public var latencyMaxNanoseconds: UInt64
    /// Units admitted against held leases, summed (see `UsageEvent.leasedUnits`).
    public var leasedUnits: UInt64 = 0

    /// Creates an empty delta for a key, feature and period.
    public init(key: String, feature: FeatureName, periodID: String) {
        self.key = key
        self.feature = feature
        self.periodID = periodID
        self.calls = 0
        self.units = 0
        self.statuses = StatusCounts()
        self.requestBytes = 0
        self.responseBytes = 0
        self.latencyTotalNanoseconds = 0
        self.latencyMaxNanoseconds = 0
    }

    /// Adds one event (counters saturate rather than wrap; at these magnitudes they never reach it).
    public mutating func add(_ event: UsageEvent) {
        calls = Self.add(calls, 1)
        units = Self.add(units, event.units)
        statuses[event.statusClass] = Self.add(statuses[event.statusClass], 1)
        requestBytes = Self.add(requestBytes, event.requestBytes)
        responseBytes = Self.add(responseBytes, event.responseBytes)
        let latency = UInt64(Swift.max(0, event.latency.saturatingNanoseconds))
        latencyTotalNanoseconds = Self.add(latencyTotalNanoseconds, latency)
        latencyMaxNanoseconds = Swift.max(latencyMaxNanoseconds, latency)
        leasedUnits = Self.add(leasedUnits, event.leasedUnits)
    }

    static func add(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (s, o) = a.addingReportingOverflow(b)
        return o ? .max : s
    }
}
