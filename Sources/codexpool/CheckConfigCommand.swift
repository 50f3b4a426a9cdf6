import ArgumentParser
import Configuration
import Gateway

/// `codexpool check-config FILE…`: validate configuration files without starting anything.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check configuration files and report every problem with its file, line and column.",
        discussion: """
        Prints one summary line per valid file and exits 0. When any file has problems, prints \
        each one as FILE:LINE:COLUMN: KEY.PATH: MESSAGE on standard error and exits 2. \
        ${VAR} references are expanded from the current environment, exactly as `serve` would. \
        TLS certificates, keys, CA files and pins are loaded too (a key that does not match its \
        certificate is an error; a certificate expiring within 14 days, a warning).
        """
    )

    @Argument(help: ArgumentHelp("The YAML files to check.", valueName: "file"))
    var files: [String]

    @Flag(help: "Check the files themselves only, not the TLS files they name (for a configuration written on another machine).")
    var syntaxOnly = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("Name at least one configuration file to check.") }
    }

    func run() throws {
        let loader = ConfigurationLoader()
        var failed = false
        for file in files {
            do {
                let configuration = try loader.load(contentsOf: file)
                // TLS files and pins are loaded as serve would load them; nothing falls back silently.
                let findings = syntaxOnly ? TLSPreflight.Findings() : TLSPreflight.check(configuration)
                for warning in findings.warnings { StandardError.write("\(file): warning: \(warning)") }
                guard findings.errors.isEmpty else {
                    failed = true
                    for error in findings.errors { StandardError.write("\(file): \(error)") }
                    continue
                }
                print(ConfigurationSummary.line(for: configuration, source: file))
            } catch {
                failed = true
                StandardError.write(error.description)
            }
        }
        if failed { throw ExitCode(2) }
    }
}
