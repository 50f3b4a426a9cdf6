import Configuration

/// Loads YAML text as if it were `/etc/codexpool/test.yaml`.
func loadConfiguration(_ yaml: String, environment: [String: String] = [:]) throws(ConfigurationError) -> CodexpoolConfiguration {
    try ConfigurationLoader(environment: environment).load(yaml: yaml, source: "test.yaml", baseDirectory: "/etc/codexpool")
}

/// Every issue the YAML text produces, as the operator would read it; empty when it is valid.
func configurationIssues(_ yaml: String, environment: [String: String] = [:]) -> [String] {
    do {
        _ = try loadConfiguration(yaml, environment: environment)
        return []
    } catch {
        return error.issues.map(\.description)
    }
}
