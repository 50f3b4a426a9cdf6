#if canImport(Glibc)
import Glibc
#endif

/// When a client connection must be given up on, before any request is handled: a request head
/// that trickles in (slowloris) or grows past the cap, and a keep-alive connection that sits
/// idle. Pure: it sees the raw bytes and the HTTP handler's signals, and says which timer to arm
/// and when to refuse; `ConnectionGuard` carries that out.
struct ConnectionDeadlines {
    enum Timer: Equatable {
        /// The next request's first byte is awaited (keep-alive).
        case idle
        /// A request head has begun (or the connection is new) and must end in time.
        case header
    }

    enum Refusal: Equatable {
        case headerTooLarge
        case headerTimeout
    }

    enum Action: Equatable {
        case arm(Timer, seconds: Double)
        case disarm
        /// Answer with this refusal and close (which disarms).
        case refuse(Refusal)
        /// Close without an answer (an idle keep-alive connection).
        case close
    }

    private enum State: Equatable {
        /// Between requests, waiting for the first byte of the next.
        case idle
        /// Reading a request head: bytes so far, and the last three (a CRLFCRLF may span reads).
        case receivingHead(bytes: Int, tail: UInt32)
        /// A request is being handled (its body, its answer, a WebSocket or tunnel afterwards).
        case busy
        case finished
    }

    private let maxHeaderBytes: Int
    private let headerTimeout: Double
    private let idleTimeout: Double
    private var state = State.receivingHead(bytes: 0, tail: 0)

    init(maxHeaderBytes: Int, headerTimeout: Double, idleTimeout: Double) {
        self.maxHeaderBytes = maxHeaderBytes
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
    }

    /// A new connection owes its first request head within the header timeout: one that opens
    /// and sends nothing is a slowloris too.
    mutating func connectionOpened() -> Action? {
        .arm(.header, seconds: headerTimeout)
    }

    /// At most one action per event (no array to allocate twice a request): a head that begins
    /// and ends in one read arms nothing, it only disarms what the idle connection had.
    mutating func received(_ bytes: some Collection<UInt8>) -> Action? {
        var count = 0
        var tail: UInt32 = 0
        switch state {
        case .busy, .finished:
            return nil
        case .idle:
            break
        case .receivingHead(let soFar, let previous):
            count = soFar
            tail = previous
        }
        let wasIdle = state == .idle
        // Where the head ends ("\r\n\r\n", perhaps begun in an earlier read), as the count of
        // head bytes up to and including it; what follows is the body or the next request.
        let headEnd: Int?
        if let scanned = bytes.withContiguousStorageIfAvailable({ Self.findHeadEnd(UnsafeRawBufferPointer($0), count: &count, tail: &tail) }) {
            headEnd = scanned
        } else {
            headEnd = Self.findHeadEnd(bytes, count: &count, tail: &tail)
        }
        if let headEnd, headEnd <= maxHeaderBytes {
            state = .busy
            return .disarm
        }
        if headEnd != nil || count > maxHeaderBytes {
            state = .finished
            return .refuse(.headerTooLarge)
        }
        state = .receivingHead(bytes: count, tail: tail)
        return wasIdle ? .arm(.header, seconds: headerTimeout) : nil
    }

    private static let headTerminator: UInt32 = 0x0D0A_0D0A

    /// Byte by byte, for storage that is not contiguous.
    private static func findHeadEnd(_ bytes: some Collection<UInt8>, count: inout Int, tail: inout UInt32) -> Int? {
        for byte in bytes {
            count += 1
            tail = (tail << 8) | UInt32(byte)
            if tail == headTerminator { return count }
        }
        return nil
    }

    /// A terminator begun in an earlier read ends in the first three bytes; one inside this read
    /// is found with `memchr` on its `\r` (this runs over every request head).
    private static func findHeadEnd(_ bytes: UnsafeRawBufferPointer, count: inout Int, tail: inout UInt32) -> Int? {
        let start = count, previousTail = tail
        var carried = tail
        for index in 0..<min(3, bytes.count) {
            carried = (carried << 8) | UInt32(bytes[index])
            if carried == headTerminator { return start + index + 1 }
        }
        if let base = bytes.baseAddress {
            var offset = 0
            while bytes.count - offset >= 4, let found = memchr(base + offset, 0x0D, bytes.count - offset - 3) {
                let index = base.distance(to: UnsafeRawPointer(found))
                if bytes[index + 1] == 0x0A, bytes[index + 2] == 0x0D, bytes[index + 3] == 0x0A { return start + index + 4 }
                offset = index + 1
            }
        }
        count = start + bytes.count
        tail = previousTail
        for byte in bytes[max(0, bytes.count - 4)...] { tail = (tail << 8) | UInt32(byte) }
        return nil
    }

    /// The HTTP handler took a request head (also one that was buffered behind the last answer).
    mutating func requestStarted() -> Action? {
        // Busy already: the head's read disarmed, and nothing arms while busy.
        guard state != .finished, state != .busy else { return nil }
        state = .busy
        return .disarm
    }

    /// The answer to the last request went out and the connection stays open.
    mutating func responseCompleted() -> Action? {
        guard state == .busy else { return nil }
        state = .idle
        return .arm(.idle, seconds: idleTimeout)
    }

    mutating func timerFired(_ timer: Timer) -> Action? {
        switch (timer, state) {
        case (.idle, .idle):
            state = .finished
            return .close
        case (.header, .receivingHead):
            state = .finished
            return .refuse(.headerTimeout)
        default:
            return nil
        }
    }
}
