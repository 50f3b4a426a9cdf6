/// Splits `host`, `host:port`, `[v6]` and `[v6]:port` into their parts.
enum HostAndPort {
    /// nil when malformed; `port` is nil when the text has none.
    static func split(_ text: Substring) -> (host: String, port: Int?)? {
        let host: Substring
        let portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if rest.isEmpty {
                portText = nil
            } else {
                guard rest.hasPrefix(":") else { return nil }
                portText = rest.dropFirst()
            }
        } else if let colon = text.firstIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
            portText = nil
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "/" }) else { return nil }
        guard let portText else { return (String(host), nil) }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCIIDigit), portText.count <= 5,
              let port = Int(portText), port <= 65535
        else { return nil }
        return (String(host), port)
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
