/// Z85, ZeroMQ's printable encoding of binary data (ZeroMQ RFC 32), used for CURVE keys.
///
/// ```swift
/// let text = try Z85.encode([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])  // "HelloWorld"
/// let bytes = try Z85.decode(text)
/// ```
public enum Z85 {
    /// Encodes `bytes`, whose count must be a multiple of 4; fails with EINVAL otherwise.
    public static func encode(_ bytes: [UInt8]) throws(ZMQError) -> String {
        guard bytes.count % 4 == 0, let text = LibZMQ.z85Encode(bytes) else {
            throw ZMQError(code: .einval, operation: "zmq_z85_encode", detail: "\(bytes.count) bytes is not a multiple of 4")
        }
        return text
    }

    /// Decodes `text`, whose length must be a multiple of 5 from the Z85 alphabet; fails with EINVAL otherwise.
    public static func decode(_ text: String) throws(ZMQError) -> [UInt8] {
        guard let bytes = LibZMQ.z85Decode(text) else {
            throw ZMQError(code: .einval, operation: "zmq_z85_decode", detail: "not Z85 text of a multiple of 5 characters")
        }
        return bytes
    }
}
