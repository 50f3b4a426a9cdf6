@testable import codexpool
import Logging
import Testing

/// The log handler keeps the two keys set for every request (`request`, `user`) apart from the
/// other metadata; through every way of reading and writing it, it is one set of metadata.
@Suite(.timeLimit(.minutes(1))) struct ServerLogHandlerTests {
    @Test func requestAndUserAreMetadataLikeAnyOther() {
        var logger = Logger(label: "test") { label in ServerLogHandler(label: label, level: .info) }
        logger[metadataKey: "request"] = "0a1b2c3d"
        logger[metadataKey: "user"] = "dev"
        logger[metadataKey: "credential"] = "a"
        #expect(logger[metadataKey: "request"] == "0a1b2c3d")
        #expect(logger[metadataKey: "user"] == "dev")
        #expect(logger.handler.metadata == ["request": "0a1b2c3d", "user": "dev", "credential": "a"])

        // A copy changed is a copy: the first logger keeps its request.
        var next = logger
        next[metadataKey: "request"] = "ffffffff"
        next[metadataKey: "user"] = nil
        #expect(logger[metadataKey: "request"] == "0a1b2c3d")
        #expect(next.handler.metadata == ["request": "ffffffff", "credential": "a"])

        // Replaced whole, the dictionary is split the same way.
        next.handler.metadata = ["user": "ops", "route": "responses"]
        #expect(next[metadataKey: "user"] == "ops")
        #expect(next[metadataKey: "request"] == nil)
        #expect(next[metadataKey: "route"] == "responses")
        #expect(next.handler.metadata == ["user": "ops", "route": "responses"])
    }
}
