import ArgumentParser
import Configuration
import Gateway
import Logging
import OpenSSLTLS
import ServiceLifecycle
import UnixSignals

/// `codexpool serve`: run the balancer and/or connector described by a configuration file.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run codexpool with a configuration file (or the built-in single-account default).",
        discussion: """
        Without --config, serves the Codex CLI's own credentials ($CODEX_HOME/auth.json or \
        ~/.codex/auth.json) on 127.0.0.1:8080 without authentication. SIGINT or SIGTERM stop \
        accepting new work and let running sessions finish.
        """
    )

    @Option(name: .shortAndLong, help: ArgumentHelp("The YAML configuration file.", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("Override the configuration's log level (trace, debug, info, notice, warning, error).", valueName: "level"))
    var logLevel: String?

    func validate() throws {
        if let logLevel, LogLevel(rawValue: logLevel.lowercased()) == nil {
            throw ValidationError("Unknown log level \"\(logLevel)\"; use trace, debug, info, notice, warning, error or critical.")
        }
    }

    func run() async throws {
        let loader = ConfigurationLoader()
        let configuration: CodexpoolConfiguration
        let source: String
        do {
            if let config {
                configuration = try loader.load(contentsOf: config)
                source = config
            } else {
                configuration = loader.embeddedDefault()
                source = ConfigurationLoader.embeddedDefaultSource
            }
        } catch {
            StandardError.write(error.description)
            throw ExitCode(2)
        }

        let level = logLevel.flatMap { LogLevel(rawValue: $0.lowercased()) } ?? configuration.logLevel
        LoggingSystem.bootstrap { label in
            ServerLogHandler(label: label, level: Logger.Level(level))
        }
        let logger = Logger(label: "codexpool")
        logger.info("configuration loaded", metadata: ["summary": "\(ConfigurationSummary.line(for: configuration, source: source))"])

        let upstreamTLS: OpenSSLContext
        do {
            upstreamTLS = try OpenSSLContext.client()
        } catch {
            StandardError.write("cannot set up TLS for upstream connections: \(error)")
            throw ExitCode(1)
        }
        let findings = TLSPreflight.check(configuration)
        for warning in findings.warnings { logger.warning("\(warning)") }
        guard findings.errors.isEmpty else {
            for error in findings.errors { StandardError.write("cannot start: \(error)") }
            throw ExitCode(1)
        }
        let runtime: GatewayRuntime
        do {
            runtime = try GatewayRuntime(configuration: configuration, logger: logger, upstreamTLS: upstreamTLS)
        } catch {
            StandardError.write("cannot start: \(error)")
            throw ExitCode(1)
        }
        await runtime.start()
        let server: GatewayServer
        do {
            server = try await GatewayServer.start(runtime: runtime)
        } catch {
            StandardError.write("cannot listen on \(configuration.listen): \(error)")
            throw ExitCode(1)
        }
        if let config { server.enableReload(from: config) }
        let group = ServiceGroup(
            services: [GatewayService(server: server, logger: logger), ReloadOnHangup(server: server, path: config, logger: logger)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        try await group.run()
        logger.info("stopped")
    }
}

/// SIGHUP re-reads the configuration file (see `GatewayServer.reload`).
struct ReloadOnHangup: Service {
    let server: GatewayServer
    /// Nil when serving the built-in default: nothing to re-read.
    let path: String?
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            guard let path else {
                logger.notice("SIGHUP ignored: started without --config, there is no file to re-read")
                continue
            }
            logger.notice("SIGHUP: reloading \(path)")
            _ = await server.reload(fromFile: path)
        }
    }
}

/// Serves until a shutdown signal, then drains the gateway.
struct GatewayService: Service {
    let server: GatewayServer
    let logger: Logger

    func run() async throws {
        logger.notice("ready; waiting for SIGINT or SIGTERM (SIGHUP reloads the configuration)")
        try? await gracefulShutdown()
        logger.notice("shutdown requested")
        await server.shutdown()
    }
}

extension Logger.Level {
    init(_ level: LogLevel) {
        self = switch level {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        case .critical: .critical
        }
    }
}
