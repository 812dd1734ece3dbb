import Yams

/// A YAML node with the path that led to it, so every error can name the key it is about.
///
/// Reading a mapping records which keys were read; `finish()` refuses the ones nobody asked for,
/// which turns a typo (`limt:`) into an error instead of a silently ignored setting.
struct ConfigNode {
    let node: Node
    let path: String

    var location: String? { node.mark.map { "\($0.line):\($0.column)" } }

    func error(_ code: ConfigError.Code, _ message: String) -> ConfigError {
        ConfigError(code, path: path, location: location, message)
    }

    func child(_ segment: String, _ node: Node) -> ConfigNode {
        ConfigNode(node: node, path: path.isEmpty || segment.hasPrefix("[") ? path + segment : "\(path).\(segment)")
    }

    // MARK: Scalars

    func string() throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node else { throw error(.invalidValue, "expected a string, got \(kind)") }
        return scalar.string
    }

    func nonEmptyString() throws(ConfigError) -> String {
        let value = try string()
        guard !value.isEmpty else { throw error(.invalidValue, "must not be empty") }
        return value
    }

    func uint64() throws(ConfigError) -> UInt64 {
        let text = try string().replacingUnderscores()
        guard let value = UInt64(text) else {
            throw error(.invalidValue, "expected a non-negative integer, got \"\(text)\"")
        }
        return value
    }

    func int(in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let text = try string().replacingUnderscores()
        guard let value = Int(text) else { throw error(.invalidValue, "expected an integer, got \"\(text)\"") }
        guard range.contains(value) else {
            throw error(.invalidValue, "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    func bool() throws(ConfigError) -> Bool {
        switch try string().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let other: throw error(.invalidValue, "expected true or false, got \"\(other)\"")
        }
    }

    func stringList() throws(ConfigError) -> [String] {
        if case .scalar = node { return [try nonEmptyString()] }
        return try sequence().map { item throws(ConfigError) in try item.nonEmptyString() }
    }

    // MARK: Collections

    func sequence() throws(ConfigError) -> [ConfigNode] {
        guard case .sequence(let items) = node else { throw error(.invalidValue, "expected a list, got \(kind)") }
        return items.enumerated().map { child("[\($0.offset)]", $0.element) }
    }

    func mapping() throws(ConfigError) -> ConfigMapping {
        guard case .mapping(let mapping) = node else { throw error(.invalidValue, "expected a mapping, got \(kind)") }
        var entries: [(String, Node)] = []
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                throw error(.invalidValue, "mapping keys must be strings")
            }
            if entries.contains(where: { $0.0 == scalar.string }) {
                throw child(scalar.string, key).error(.invalidValue, "key appears twice")
            }
            entries.append((scalar.string, value))
        }
        return ConfigMapping(owner: self, entries: entries)
    }

    var kind: String {
        switch node {
        case .scalar(let s): "\"\(s.string)\""
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }
}

/// The keys of one YAML mapping, read one by one; `finish()` refuses any left unread.
final class ConfigMapping {
    let owner: ConfigNode
    private let entries: [(String, Node)]
    private var read: Set<String> = []

    init(owner: ConfigNode, entries: [(String, Node)]) {
        self.owner = owner
        self.entries = entries
    }

    /// Every key in document order (for maps keyed by name: plans, features).
    var keys: [String] { entries.map(\.0) }

    func optional(_ key: String) -> ConfigNode? {
        read.insert(key)
        guard let node = entries.first(where: { $0.0 == key })?.1 else { return nil }
        if case .scalar(let scalar) = node, scalar.tag.description.hasSuffix(":null") { return nil }
        return owner.child(key, node)
    }

    func required(_ key: String) throws(ConfigError) -> ConfigNode {
        guard let node = optional(key) else {
            throw ConfigError(.missingKey, path: owner.child(key, owner.node).path, location: owner.location, "is required")
        }
        return node
    }

    /// Refuses keys nobody read, naming the closest known key when there is one.
    func finish() throws(ConfigError) {
        for (key, node) in entries where !read.contains(key) {
            let hint = read.min { editDistance($0, key) < editDistance($1, key) }
                .flatMap { editDistance($0, key) <= 2 ? " (did you mean \($0)?)" : nil } ?? ""
            throw owner.child(key, node).error(.unknownKey, "unknown key\(hint)")
        }
    }
}

private func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in 1...max(b.count, 1) where !b.isEmpty {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return row[b.count]
}

extension String {
    /// YAML 1.1 allows `10_000`; accept it for big limits.
    func replacingUnderscores() -> String { String(filter { $0 != "_" }) }
}
