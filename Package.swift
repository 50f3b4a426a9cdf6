// swift-tools-version:6.2
import PackageDescription

/// Settings shared by every Swift target of the package: Swift 6 mode is the tools default;
/// these make imports explicit and turn every warning into an error so "zero warnings" holds.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .treatAllWarnings(as: .error),
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]

let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioWebSocket = Target.Dependency.product(name: "NIOWebSocket", package: "swift-nio")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")

let package = Package(
    name: "codexpool",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "codexpool", targets: ["codexpool"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "OpenSSLTLS", dependencies: ["COpenSSL", nioCore], swiftSettings: strictSettings),
        .target(name: "Zlib", dependencies: ["CZlib", nioCore], swiftSettings: strictSettings),
        .target(name: "HTTPWire", dependencies: [nioCore, nioHTTP1], swiftSettings: strictSettings),
        .target(name: "UpstreamHTTP", dependencies: ["HTTPWire", "OpenSSLTLS", "Zlib", nioCore, nioHTTP1, nioPosix], swiftSettings: strictSettings),
        .target(name: "Yamux", dependencies: [nioCore], swiftSettings: strictSettings),
        .target(name: "PoolCore", resources: [.embedInCode("Resources/pricing.json")], swiftSettings: strictSettings),
        .target(name: "Storage", dependencies: ["PoolCore", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift")], swiftSettings: strictSettings),
        .target(
            name: "Configuration",
            dependencies: ["PoolCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Gateway",
            dependencies: [
                "Configuration", "PoolCore", "OpenSSLTLS", "Yamux", "Zlib", "HTTPWire", "UpstreamHTTP", "Storage", nioCore, nioHTTP1, nioPosix,
                nioWebSocket, logging,
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            resources: [.embedInCode("Admin/Resources/dashboard.html")],
            swiftSettings: strictSettings
        ),
        .target(name: "UpstreamSimulator", dependencies: ["OpenSSLTLS", nioCore, nioHTTP1, nioPosix, nioWebSocket], swiftSettings: strictSettings),
        .executableTarget(
            name: "codexpool",
            dependencies: [
                "Configuration", "Gateway", "OpenSSLTLS", "PoolCore", "Storage", "UpstreamHTTP", "UpstreamSimulator", nioCore, nioHTTP1, nioPosix,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OpenSSLTLSTests",
            dependencies: [
                "OpenSSLTLS", "TestSupport", nioCore,
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "YamuxTests",
            dependencies: [
                "Yamux", "YamuxFuzzing", "OpenSSLTLS", "TestSupport", nioCore, .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            // The Go side of the interop tests, built by the tests themselves with `go build`.
            exclude: ["GoPeer"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PoolCoreTests",
            dependencies: ["PoolCore", "TestSupport", .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "PoolCore", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")],
                    swiftSettings: strictSettings),
        .testTarget(name: "ConfigurationTests", dependencies: ["Configuration", "PoolCore"], swiftSettings: strictSettings),
        .testTarget(
            name: "GatewayTests",
            dependencies: ["Gateway", "Configuration", "PoolCore", "OpenSSLTLS", "HTTPWire", "UpstreamHTTP", "Zlib", "UpstreamSimulator", "TestSupport", "Yamux", nioCore, nioHTTP1, nioPosix, nioWebSocket, logging,
                           .product(name: "NIOEmbedded", package: "swift-nio")],
            // The Go side of the reverse-handshake interop tests, built by the tests with `go build`.
            exclude: ["GoReversePeer", "OpenAISDK"],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "UpstreamSimulatorTests", dependencies: ["UpstreamSimulator", nioHTTP1], swiftSettings: strictSettings),
        .testTarget(
            name: "CodexpoolTests",
            dependencies: ["codexpool", "TestSupport", "Gateway", "Configuration", "PoolCore", "OpenSSLTLS", "UpstreamHTTP", "UpstreamSimulator", nioCore, nioHTTP1, nioPosix, logging],
            swiftSettings: strictSettings
        ),
        // Throughput of the tunnel transport; run through scripts/benchmark, in release mode.
        .executableTarget(
            name: "TunnelBenchmark",
            dependencies: ["Yamux", "OpenSSLTLS", nioCore, .product(name: "NIOPosix", package: "swift-nio")],
            path: "Benchmarks/TunnelBenchmark",
            swiftSettings: strictSettings
        ),
        // The benchmarks' HTTP and WebSocket load generator.
        .target(name: "BenchmarkSupport", dependencies: ["Zlib", nioCore, nioHTTP1, nioPosix, nioWebSocket], path: "Benchmarks/BenchmarkSupport",
                swiftSettings: strictSettings),
        // Proxy overhead against the simulator directly and against nginx; run through scripts/benchmark.
        .executableTarget(
            name: "GatewayBenchmark",
            dependencies: ["BenchmarkSupport", "Gateway", "Configuration", "PoolCore", "UpstreamHTTP", "UpstreamSimulator", nioCore, nioHTTP1, nioPosix,
                           nioWebSocket, logging],
            path: "Benchmarks/GatewayBenchmark",
            swiftSettings: strictSettings
        ),
        // Proxy cost against an upstream that is never the bottleneck (nginx, a Go WebSocket server):
        // codexpool and nginx as processes, CPU per request from /proc; run through scripts/benchmark.
        .executableTarget(
            name: "ProxyBenchmark",
            dependencies: ["BenchmarkSupport", "UpstreamSimulator", "Zlib", nioCore, nioPosix],
            path: "Benchmarks/ProxyBenchmark",
            exclude: ["FastUpstream", "PROFILE.md"],
            swiftSettings: strictSettings
        ),
        // Start-up time, idle memory and memory per idle WebSocket session, codexpool and nginx as processes.
        .executableTarget(
            name: "FootprintBenchmark",
            dependencies: ["UpstreamSimulator", nioCore, nioPosix],
            path: "Benchmarks/FootprintBenchmark",
            swiftSettings: strictSettings
        ),
        // Random and mutated yamux input, for the fuzz test and the YamuxFuzz executable.
        .target(name: "YamuxFuzzing", dependencies: ["Yamux", "PoolCore", nioCore], path: "Tests/YamuxFuzzing", swiftSettings: strictSettings),
        // Millions of fuzzed frames through the yamux parser and session; run through scripts/benchmark.
        .executableTarget(name: "YamuxFuzz", dependencies: ["Yamux", "YamuxFuzzing"], path: "Benchmarks/YamuxFuzz", swiftSettings: strictSettings),
        // Helpers shared by the test targets (child processes); not part of the product.
        .target(name: "TestSupport", dependencies: [nioCore, nioPosix], path: "Tests/TestSupport", swiftSettings: strictSettings),
    ]
)
