import Crypto
import TollgateCore

/// Turns API keys into key ids.
public enum APIKeyHasher {
    /// Hex SHA-256 of the key's UTF-8 bytes: the id under which Redis and the wire know the key.
    public static func keyID(for apiKey: String) -> String {
        let digest = SHA256.hash(data: Array(apiKey.utf8))
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digest {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether text has the shape of a key id (64 lowercase hex digits).
    public static func isKeyID(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
