/// The one-line description `codexpool check-config` prints for a valid file.
public enum ConfigurationSummary {
    public static func line(for configuration: CodexpoolConfiguration, source: String) -> String {
        var counts: [String: Int] = [:]
        for credential in configuration.credentials {
            let kind = switch credential {
            case .local: "local"
            case .external(let external):
                switch external.mode {
                case .forward: "forwarding"
                case .receiver: "receiving"
                case .connector: "connector"
                }
            case .balancer: "balancer"
            }
            counts[kind, default: 0] += 1
        }
        let order = ["local", "forwarding", "receiving", "connector", "balancer"]
        let parts = order.compactMap { kind in counts[kind].map { "\($0) \(kind)" } }
        let credentials = plural(configuration.credentials.count, "credential") + " (" + parts.joined(separator: ", ") + ")"
        let users = configuration.users.isEmpty ? "no users (open access)" : plural(configuration.users.count, "user")
        let scheme = configuration.tls == nil ? "http" : "https"
        return "\(source): ok: listens on \(scheme)://\(configuration.listen), \(credentials), \(users)"
    }

    private static func plural(_ count: Int, _ noun: String) -> String {
        "\(count) \(noun)\(count == 1 ? "" : "s")"
    }
}
