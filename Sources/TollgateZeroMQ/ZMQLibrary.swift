/// Facts about the libzmq the process is linked against.
public enum ZMQLibrary {
    /// The version, such as `"4.3.4"`.
    public static var version: String {
        let version = LibZMQ.version()
        return "\(version.major).\(version.minor).\(version.patch)"
    }

    /// Whether libzmq was built with `capability`, such as `"curve"` or `"ipc"` (zmq_has).
    public static func has(_ capability: String) -> Bool {
        LibZMQ.has(capability)
    }
}
