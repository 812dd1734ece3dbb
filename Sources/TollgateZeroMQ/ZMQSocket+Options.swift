import CZeroMQ

extension ZMQSocket {
    /// Sets `option` to `value`.
    public func setOption<Value>(_ option: ZMQSocketOption<Value>, to value: Value) throws(ZMQError) {
        let handle = try self.liveHandle(for: "zmq_setsockopt")
        try LibZMQ.setOption(handle, option.code, option.encode(value), name: option.name)
    }

    /// Reads `option`'s current value.
    public func option<Value>(_ option: ZMQSocketOption<Value>) throws(ZMQError) -> Value {
        let handle = try self.liveHandle(for: "zmq_getsockopt")
        return option.decode(try LibZMQ.getOption(handle, option.code, capacity: option.capacity, name: option.name))
    }

    /// The endpoint last bound, with the port a `tcp://host:*` bind picked (ZMQ_LAST_ENDPOINT).
    public var lastEndpoint: String {
        get throws(ZMQError) {
            let handle = try self.liveHandle(for: "zmq_getsockopt")
            let bytes = try LibZMQ.getOption(handle, ZMQ_LAST_ENDPOINT, capacity: 1024, name: "ZMQ_LAST_ENDPOINT")
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Receives messages that start with `prefix` on a SUB socket (an empty prefix matches all).
    public func subscribe(_ prefix: [UInt8]) throws(ZMQError) {
        let handle = try self.liveHandle(for: "zmq_setsockopt")
        try LibZMQ.setOption(handle, ZMQ_SUBSCRIBE, prefix, name: "ZMQ_SUBSCRIBE")
    }

    /// Receives messages that start with the UTF-8 bytes of `prefix` on a SUB socket.
    public func subscribe(_ prefix: String) throws(ZMQError) {
        try self.subscribe(Array(prefix.utf8))
    }

    /// Removes one earlier ``subscribe(_:)-([UInt8])`` of `prefix`.
    public func unsubscribe(_ prefix: [UInt8]) throws(ZMQError) {
        let handle = try self.liveHandle(for: "zmq_setsockopt")
        try LibZMQ.setOption(handle, ZMQ_UNSUBSCRIBE, prefix, name: "ZMQ_UNSUBSCRIBE")
    }

    /// Removes one earlier subscription to the UTF-8 bytes of `prefix`.
    public func unsubscribe(_ prefix: String) throws(ZMQError) {
        try self.unsubscribe(Array(prefix.utf8))
    }
}
