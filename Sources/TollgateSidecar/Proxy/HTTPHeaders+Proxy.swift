import NIOHTTP1

extension HTTPHeaders {
    /// Removes hop-by-hop headers (RFC 9110 §7.6.1): `Connection` and every header it names,
    /// `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`; with
    /// `alsoUnits`, `Tollgate-Units` too. Returns whether the message was chunked.
    ///
    /// One scan finds out whether there is anything to do, so the common request (no hop-by-hop
    /// header at all) costs a pass over the names and no allocation.
    mutating func removeHopByHop(alsoUnits: Bool = false) -> (chunked: Bool, units: [String]) {
        var found = false
        var chunked = false
        var units: [String] = []
        var connectionTokens: [Substring] = []
        for (name, value) in self {
            switch HopByHop.classify(name) {
            case .keep:
                continue
            case .connection:
                found = true
                connectionTokens.append(contentsOf: value.split(separator: ",").map { $0.trimmingSpaces })
            case .transferEncoding:
                found = true
                if value.lowercasedASCIIContains("chunked") { chunked = true }
            case .units:
                if alsoUnits {
                    found = true
                    units.append(value)
                }
            case .remove:
                found = true
            }
        }
        guard found else { return (false, units) }
        for token in connectionTokens where !token.isEmpty {
            self.remove(name: String(token))
        }
        for name in HopByHop.fixedNames { self.remove(name: name) }
        if alsoUnits { self.remove(name: TollgateUnits.headerName) }
        if self.contains(where: { $0.name.utf8.count > 6 && $0.name.lowercased().hasPrefix("proxy-") }) {
            let proxyNames = self.filter { $0.name.lowercased().hasPrefix("proxy-") }.map(\.name)
            for name in proxyNames { self.remove(name: name) }
        }
        return (chunked, units)
    }
}

enum HopByHop {
    static let fixedNames = ["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"]

    enum Kind { case keep, connection, transferEncoding, units, remove }

    /// Classifies a header name by length first, so most names are ruled out by one integer compare.
    @inline(__always)
    static func classify(_ name: String) -> Kind {
        let utf8 = name.utf8
        switch utf8.count {
        case 2: return equalsLowercased(utf8, "te") ? .remove : .keep
        case 7: return equalsLowercased(utf8, "trailer") || equalsLowercased(utf8, "upgrade") ? .remove : .keep
        case 10:
            if equalsLowercased(utf8, "connection") { return .connection }
            if equalsLowercased(utf8, "keep-alive") { return .remove }
            return hasProxyPrefix(utf8) ? .remove : .keep
        case 14:
            if equalsLowercased(utf8, "tollgate-units") { return .units }
            return hasProxyPrefix(utf8) ? .remove : .keep
        case 17: return equalsLowercased(utf8, "transfer-encoding") ? .transferEncoding : (hasProxyPrefix(utf8) ? .remove : .keep)
        default: return utf8.count > 6 && hasProxyPrefix(utf8) ? .remove : .keep
        }
    }

    @inline(__always)
    static func equalsLowercased(_ utf8: String.UTF8View, _ lower: StaticString) -> Bool {
        guard utf8.count == lower.utf8CodeUnitCount else { return false }
        var p = lower.utf8Start
        for byte in utf8 {
            let folded = (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
            if folded != p.pointee { return false }
            p += 1
        }
        return true
    }

    @inline(__always)
    static func hasProxyPrefix(_ utf8: String.UTF8View) -> Bool {
        var index = utf8.startIndex
        for expected in "proxy-".utf8 {
            guard index != utf8.endIndex else { return false }
            let byte = utf8[index]
            let folded = (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
            if folded != expected { return false }
            index = utf8.index(after: index)
        }
        return true
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let first = s.first, first == " " || first == "\t" { s = s.dropFirst() }
        while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
        return s
    }
}

extension String {
    func lowercasedASCIIContains(_ needle: String) -> Bool {
        self.lowercased().contains(needle)
    }
}
