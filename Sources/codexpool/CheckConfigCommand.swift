import ArgumentParser
import Configuration

/// `codexpool check-config FILE…`: validate configuration files without starting anything.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check configuration files and report every problem with its file, line and column.",
        discussion: """
        Prints one summary line per valid file and exits 0. When any file has problems, prints \
        each one as FILE:LINE:COLUMN: KEY.PATH: MESSAGE on standard error and exits 2. \
        ${VAR} references are expanded from the current environment, exactly as `serve` would.
        """
    )

    @Argument(help: ArgumentHelp("The YAML files to check.", valueName: "file"))
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("Name at least one configuration file to check.") }
    }

    func run() throws {
        let loader = ConfigurationLoader()
        var failed = false
        for file in files {
            do {
                let configuration = try loader.load(contentsOf: file)
                print(ConfigurationSummary.line(for: configuration, source: file))
            } catch {
                failed = true
                StandardError.write(error.description)
            }
        }
        if failed { throw ExitCode(2) }
    }
}
