import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import PoolCore
import TestSupport
import Testing
import UpstreamHTTP
import UpstreamSimulator

/// `codexpool login` against the simulated issuer: each flow, and each way it can fail.
@Suite(.timeLimit(.minutes(2))) struct LoginCommandTests {
    final class Setting: AsyncStoppable {
        let simulator: UpstreamSimulator
        let folder: URL
        var output: URL { folder.appendingPathComponent("accounts/a/auth.json") }
        var issuer: String { "http://127.0.0.1:\(simulator.port)" }

        init() async throws {
            simulator = try await UpstreamSimulator.start(accounts: [SimulatedAccount(accountID: "a", planType: "pro")])
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("codexpool-login-\(UUID().uuidString)")
        }

        func stop() async {
            await simulator.shutdown()
            try? FileManager.default.removeItem(at: folder)
        }

        func login(_ extra: [String] = []) throws -> ChildProcess {
            let child = ChildProcess(try ChildProcess.codexpoolExecutable, ["login", "--output", output.path, "--issuer", issuer] + extra,
                                     environment: [:], mergeOutput: true)
            try child.start()
            return child
        }

        /// GET on the simulator without following redirects.
        func get(_ url: String) async throws -> UpstreamClient.CollectedResponse {
            let client = UpstreamClient()
            defer { client.shutdown() }
            let components = try #require(URLComponents(string: url))
            let path = components.percentEncodedPath + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
            return try await client.collect(UpstreamTarget(host: "127.0.0.1", port: components.port ?? 80, tls: nil), method: .GET, path: path,
                                            headers: HTTPHeaders(), on: MultiThreadedEventLoopGroup.singleton.next()).get()
        }
    }

    static func userCode(in output: String) -> String? {
        output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.count == 9 && $0.dropFirst(4).first == "-" }
    }

    static func authorizeURL(in output: String) -> String? {
        output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.contains("/oauth/authorize?") }
    }

    /// The file is private, holds tokens the backend takes, and the pool reads it.
    static func expectWrittenSignIn(_ setting: Setting) throws {
        let attributes = try FileManager.default.attributesOfItem(atPath: setting.output.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let folder = try FileManager.default.attributesOfItem(atPath: setting.output.deletingLastPathComponent().path)
        #expect((folder[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        let auth = try CodexAuthFile(data: try Data(contentsOf: setting.output))
        #expect(auth.accountID == "a")
        #expect(auth.planTypeHint == "pro")
        #expect(auth.lastRefresh != nil && !auth.needsRefresh(now: Date()))
        let tokens = try #require(auth.tokens)
        #expect(setting.simulator.account("a")?.accessTokens.contains(tokens.accessToken) == true)
        #expect(setting.simulator.account("a")?.refreshToken == tokens.refreshToken)
    }

    @Test func theDeviceFlowWritesAWorkingSignIn() async throws {
        let setting = try await Setting()
        try await setting.stopAfter { () async throws in
            let child = try setting.login()
            await child.waitForStandardError(containing: "Waiting for approval")
            let code = try #require(Self.userCode(in: child.standardError), "\(child.standardError)")
            #expect(child.standardError.contains("\(setting.issuer)/codex/device"))
            setting.simulator.approveDeviceLogin(userCode: code, account: "a")
            #expect(await child.exitStatus() == 0, "\(child.standardError)")
            #expect(child.standardError.contains("Signed in: account a, plan pro."))
            try Self.expectWrittenSignIn(setting)
        }
    }

    @Test func slowDownIsHonouredAndDenialOrExpiryWritesNothing() async throws {
        let setting = try await Setting()
        try await setting.stopAfter { () async throws in
            // slow_down on the first poll: the next one waits the interval plus 5 s. (Asked for
            // before the login starts, so the first poll is surely the slowed one.)
            setting.simulator.slowDownNextDevicePoll()
            let slowed = try setting.login()
            await slowed.waitForStandardError(containing: "Waiting for approval")
            let code = try #require(Self.userCode(in: slowed.standardError))
            try await waitUntil("the slowed-down poll", timeout: .seconds(20)) { setting.simulator.deviceLoginPollTimes.count >= 1 }
            try await waitUntil("the poll after it", timeout: .seconds(30)) { setting.simulator.deviceLoginPollTimes.count >= 2 }
            let times = setting.simulator.deviceLoginPollTimes
            #expect(times[1].timeIntervalSince(times[0]) >= 5.5, "polled again after \(times[1].timeIntervalSince(times[0])) s")
            setting.simulator.denyDeviceLogin(userCode: code)
            #expect(await slowed.exitStatus() == 1)
            #expect(slowed.standardError.contains("the sign-in was denied in the browser"), "\(slowed.standardError)")
            #expect(!FileManager.default.fileExists(atPath: setting.output.path))

            let expiring = try setting.login()
            await expiring.waitForStandardError(containing: "Waiting for approval")
            setting.simulator.expireDeviceLogin(userCode: try #require(Self.userCode(in: expiring.standardError)))
            #expect(await expiring.exitStatus() == 1)
            #expect(expiring.standardError.contains("expired before it was approved"), "\(expiring.standardError)")
            #expect(!FileManager.default.fileExists(atPath: setting.output.path))
        }
    }

    @Test func thePastedBrowserFlowChecksStateAndVerifier() async throws {
        let setting = try await Setting()
        try await setting.stopAfter { () async throws in
            // A redirect from another sign-in (other state) is refused.
            let wrongState = try setting.login(["--paste"])
            await wrongState.waitForStandardError(containing: "Paste that address")
            let firstURL = try #require(Self.authorizeURL(in: wrongState.standardError))
            let redirect = try #require(try await setting.get(firstURL).header("location"))
            wrongState.writeInput(redirect.replacingOccurrences(of: "state=", with: "state=x") + "\n")
            wrongState.closeInput()
            #expect(await wrongState.exitStatus() == 1)
            #expect(wrongState.standardError.contains("state does not match"), "\(wrongState.standardError)")

            // A code issued for another challenge: the verifier does not match, the issuer refuses.
            let otherChallenge = try setting.login(["--paste"])
            await otherChallenge.waitForStandardError(containing: "Paste that address")
            let url = try #require(Self.authorizeURL(in: otherChallenge.standardError))
            var components = try #require(URLComponents(string: url))
            let state = components.queryItems?.first { $0.name == "state" }?.value ?? ""
            components.queryItems = components.queryItems?.map { $0.name == "code_challenge" ? URLQueryItem(name: $0.name, value: "not-the-challenge") : $0 }
            let foreignURL = try #require(components.string)
            let foreign = try #require(try await setting.get(foreignURL).header("location"))
            #expect(foreign.contains("state=\(state)"))
            otherChallenge.writeInput(foreign + "\n")
            otherChallenge.closeInput()
            #expect(await otherChallenge.exitStatus() == 1)
            #expect(otherChallenge.standardError.contains("code_verifier does not match"), "\(otherChallenge.standardError)")
            #expect(!FileManager.default.fileExists(atPath: setting.output.path))

            // The real thing.
            let child = try setting.login(["--paste"])
            await child.waitForStandardError(containing: "Paste that address")
            let goodURL = try #require(Self.authorizeURL(in: child.standardError))
            let good = try #require(try await setting.get(goodURL).header("location"))
            #expect(good.hasPrefix("http://localhost:1455/auth/callback?code="))
            child.writeInput(good + "\n")
            child.closeInput()
            #expect(await child.exitStatus() == 0, "\(child.standardError)")
            try Self.expectWrittenSignIn(setting)
        }
    }

    @Test func theListeningBrowserFlowCatchesTheRedirect() async throws {
        let setting = try await Setting()
        try await setting.stopAfter { () async throws in
            let child = try setting.login(["--listen", "--callback-port", "0"])
            await child.waitForStandardError(containing: "Waiting for the browser")
            let authorize = try #require(Self.authorizeURL(in: child.standardError))
            let redirect = try #require(try await setting.get(authorize).header("location"))
            let page = try await setting.get(redirect.replacingOccurrences(of: "localhost", with: "127.0.0.1"))
            #expect(page.status == 200 && page.text.contains("Signed in"))
            #expect(await child.exitStatus() == 0, "\(child.standardError)")
            try Self.expectWrittenSignIn(setting)
        }
    }
}

extension UpstreamClient.CollectedResponse {
    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers.first(name: name) }
}
