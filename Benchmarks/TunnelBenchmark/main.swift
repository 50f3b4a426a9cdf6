// Bulk throughput of the reverse tunnel's transport on loopback, written as Markdown:
//   raw TLS (our OpenSSL handler) · TLS + our yamux, 1 and 64 streams · the Go pair
//   (crypto/tls + hashicorp/yamux), 1 and 64 streams.
// Usage: TunnelBenchmark <go-yamuxpeer binary> [MiB per run]
import Foundation
import NIOCore
import NIOPosix
import OpenSSLTLS
import Synchronization
import Yamux

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: TunnelBenchmark <go yamuxpeer binary> [MiB per run]\n".utf8))
    exit(2)
}
let goPeer = arguments[1]
let totalBytes = (arguments.count > 2 ? Int(arguments[2]) ?? 256 : 256) << 20
let runs = 5
// Sender and receiver each on a thread of their own, always: with one shared two-thread group,
// round-robin put them on the same thread in some runs and on two in others.
let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

// MARK: Certificates

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-bench-\(UUID().uuidString)").path
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
func shell(_ command: String) -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-c", command]
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try? process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
_ = shell("""
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr -subj /CN=localhost
    printf 'subjectAltName=DNS:localhost\\n' > ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext
    """)
let serverContext = try OpenSSLContext.server(certificateChainFile: "\(directory)/server.pem", privateKeyFile: "\(directory)/server.key")
let clientContext = try OpenSSLContext.client(TLSClientConfiguration(caFilePath: "\(directory)/ca.pem"))

// MARK: Receiving side

/// Counts bytes from every connection and stream; completes once `target` bytes arrived.
final class ByteCounter: Sendable {
    private let state = Mutex<(count: Int, target: Int, promise: EventLoopPromise<Void>?)>((0, 0, nil))

    func expect(_ target: Int, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        state.withLock { $0 = (0, target, promise) }
        return promise.futureResult
    }

    func add(_ count: Int) {
        let done: EventLoopPromise<Void>? = state.withLock {
            $0.count += count
            guard $0.count >= $0.target, let promise = $0.promise else { return nil }
            $0.promise = nil
            return promise
        }
        done?.succeed()
    }
}

final class Discard: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let counter: ByteCounter
    init(_ counter: ByteCounter) { self.counter = counter }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        counter.add(unwrapInboundIn(data).readableBytes)
    }
}

let counter = ByteCounter()

func startServer(yamux: Bool) async throws -> any Channel {
    try await ServerBootstrap(group: serverGroup)
        .childChannelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: serverContext))
                if yamux {
                    try channel.pipeline.syncOperations.addHandler(YamuxSessionHandler(role: .server, inboundStreamInitializer: { stream in
                        stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(Discard(counter)) }
                    }))
                } else {
                    try channel.pipeline.syncOperations.addHandler(Discard(counter))
                }
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
}

// MARK: Sending side

/// Writes `bytes` in 64 KiB chunks, waiting whenever the channel stops being writable.
/// (One task drives each stream, so single-stream figures include a task hop per pause.)
func send(_ bytes: Int, on channel: any Channel, chunk: ByteBuffer) async throws {
    var remaining = bytes
    var lastWrite: EventLoopFuture<Void>?
    while remaining > 0 {
        let slice = chunk.getSlice(at: 0, length: min(remaining, chunk.readableBytes))!
        remaining -= slice.readableBytes
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(slice, promise: promise)
        lastWrite = promise.futureResult
        if !channel.isWritable { try await promise.futureResult.get() }
    }
    try await lastWrite?.get()
}

func connect(yamux: Bool, port: Int) async throws -> (connection: any Channel, session: NIOLoopBound<YamuxSessionHandler>?) {
    let sessions = Mutex<[NIOLoopBound<YamuxSessionHandler>]>([])
    let connection = try await ClientBootstrap(group: clientGroup)
        .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
        // The same write buffering a yamux stream has (256 KiB), so raw TLS is not held back
        // by NIO's default 64 KiB high-water mark in the sender's pauses.
        .channelOption(.writeBufferWaterMark, value: .init(low: 128 * 1024, high: 256 * 1024))
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(OpenSSLHandler(context: clientContext, serverName: "localhost"))
                if yamux {
                    let session = YamuxSessionHandler(role: .client, inboundStreamInitializer: nil)
                    try channel.pipeline.syncOperations.addHandler(session)
                    sessions.withLock { $0.append(NIOLoopBound(session, eventLoop: channel.eventLoop)) }
                }
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    return (connection, sessions.withLock { $0.first })
}

/// MiB/s of one run: `streams` streams (0 = raw TLS without yamux) sharing `totalBytes`.
func measure(streams: Int) async throws -> Double {
    let server = try await startServer(yamux: streams > 0)
    let (connection, session) = try await connect(yamux: streams > 0, port: server.localAddress!.port!)
    let chunk = ByteBuffer(repeating: 0x5a, count: 64 * 1024)
    let done = counter.expect(totalBytes, on: connection.eventLoop)
    let start = ContinuousClock.now
    if let session {
        let perStream = totalBytes / streams
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for _ in 0..<streams {
                tasks.addTask {
                    let stream = try await session.eventLoop.flatSubmit { () -> EventLoopFuture<any Channel> in
                        do { return try session.value.openStream(initializer: nil) } catch { return session.eventLoop.makeFailedFuture(error) }
                    }.get()
                    try await send(perStream, on: stream, chunk: chunk)
                }
            }
            try await tasks.waitForAll()
        }
    } else {
        try await send(totalBytes, on: connection, chunk: chunk)
    }
    try await done.get()
    let seconds = (ContinuousClock.now - start) / .seconds(1)
    try await connection.close().get()
    try await server.close().get()
    return Double(totalBytes) / 1_048_576 / seconds
}

/// MiB/s of the Go pair over Go's TLS.
func measureGo(streams: Int) throws -> Double {
    let server = Process()
    server.executableURL = URL(fileURLWithPath: goPeer)
    server.arguments = ["-role", "server", "-discard", "-tls", "\(directory)/server.pem,\(directory)/server.key"]
    let serverOutput = Pipe()
    server.standardOutput = serverOutput
    try server.run()
    var announced = ""
    while !announced.contains("\n") {
        let data = serverOutput.fileHandleForReading.availableData
        if data.isEmpty { break }
        announced += String(decoding: data, as: UTF8.self)
    }
    guard let port = announced.split(separator: " ").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
        throw NSError(domain: "bench", code: 1, userInfo: [NSLocalizedDescriptionKey: "go server did not start: \(announced)"])
    }
    let output = shell("'\(goPeer)' -role client -discard -addr 127.0.0.1:\(port) -tls-ca '\(directory)/ca.pem' -streams \(streams) -size \(totalBytes / streams)")
    server.waitUntilExit()
    guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("ELAPSED_NS ") }),
          let nanoseconds = Double(line.dropFirst("ELAPSED_NS ".count)) else {
        throw NSError(domain: "bench", code: 2, userInfo: [NSLocalizedDescriptionKey: "go client failed: \(output)"])
    }
    return Double(totalBytes) / 1_048_576 / (nanoseconds / 1e9)
}

// Rounds of all five, interleaved: this machine's speed drifts by tens of percent over minutes,
// so each ratio is taken within a round and the median of the rounds' ratios is reported.
// TUNNEL_BENCHMARK_STREAMS=N measures only N streams of ours (0: raw TLS), for profiling.
if let only = ProcessInfo.processInfo.environment["TUNNEL_BENCHMARK_STREAMS"].flatMap(Int.init) {
    print(String(format: "%.0f MiB/s", try await measure(streams: only)))
    exit(0)
}
var rounds: [(raw: Double, ours1: Double, ours64: Double, go1: Double, go64: Double)] = []
for _ in 0..<runs {
    rounds.append((try await measure(streams: 0), try await measure(streams: 1), try await measure(streams: 64),
                   try measureGo(streams: 1), try measureGo(streams: 64)))
}
func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
let rawTLS = median(rounds.map(\.raw)), ours1 = median(rounds.map(\.ours1)), ours64 = median(rounds.map(\.ours64))
let go1 = median(rounds.map(\.go1)), go64 = median(rounds.map(\.go64))

func format(_ value: Double) -> String { String(format: "%.0f", value) }
func ratio(_ value: Double) -> String { String(format: "%.2f", value) }
let vsRaw1 = median(rounds.map { $0.ours1 / $0.raw }), vsRaw64 = median(rounds.map { $0.ours64 / $0.raw })
let vsGo1 = median(rounds.map { $0.ours1 / $0.go1 }), vsGo64 = median(rounds.map { $0.ours64 / $0.go64 })
print("""
| transfer (\(totalBytes >> 20) MiB, client → server; medians of \(runs) interleaved rounds, ratios within each round) | MiB/s | ratio | target | met |
| --- | ---: | ---: | --- | --- |
| raw TLS, our OpenSSL handler (baseline) | \(format(rawTLS)) | 1.00 | | |
| TLS + our yamux, 1 stream | \(format(ours1)) | \(ratio(vsRaw1)) × raw TLS | ≥ 0.8 × raw TLS | \(vsRaw1 >= 0.8 ? "yes" : "no") |
| TLS + our yamux, 64 streams | \(format(ours64)) | \(ratio(vsRaw64)) × raw TLS | ≥ 0.8 × raw TLS | \(vsRaw64 >= 0.8 ? "yes" : "no") |
| Go pair (crypto/tls + hashicorp/yamux), 1 stream | \(format(go1)) | ours: \(ratio(vsGo1)) × Go | ours ≥ Go | \(vsGo1 >= 1 ? "yes" : "no") |
| Go pair (crypto/tls + hashicorp/yamux), 64 streams | \(format(go64)) | ours: \(ratio(vsGo64)) × Go | ours ≥ Go | \(vsGo64 >= 1 ? "yes" : "no") |
""")
try? FileManager.default.removeItem(atPath: directory)
