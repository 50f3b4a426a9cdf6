import NIOCore

/// The writes a stream's application queued and the session has not sent yet, with how many of
/// them were flushed (only those may leave). The session takes data from it through the stream
/// channel, never by reaching into it.
struct YamuxStreamWriteQueue {
    struct Write {
        var data: ByteBuffer
        var promise: EventLoopPromise<Void>?
    }

    private var writes = CircularBuffer<Write>()
    /// The first this many writes were flushed and may go out. A count, not a flag per write: a
    /// flush must not walk a queue that can hold thousands of writes.
    private var flushed = 0
    /// Bytes queued and not yet sent, for the stream's writability.
    private(set) var pendingBytes = 0

    var isEmpty: Bool { writes.isEmpty }
    var hasFlushedData: Bool { flushed > 0 }

    mutating func append(_ data: ByteBuffer, promise: EventLoopPromise<Void>?) {
        writes.append(Write(data: data, promise: promise))
        pendingBytes += data.readableBytes
    }

    mutating func flush() {
        flushed = writes.count
    }

    /// Up to `maximum` bytes of the first flushed write, left in the queue until `sent` says how
    /// much of them went out.
    func firstChunk(maximum: Int) -> ByteBuffer? {
        guard flushed > 0, let first = writes.first else { return nil }
        return first.data.getSlice(at: first.data.readerIndex, length: min(first.data.readableBytes, maximum))
    }

    /// `count` bytes of the first flushed write went out; its promise when that finished it.
    mutating func sent(_ count: Int) -> (finished: Bool, promise: EventLoopPromise<Void>?) {
        guard flushed > 0, var first = writes.first else { return (false, nil) }
        first.data.moveReaderIndex(forwardBy: count)
        pendingBytes -= count
        guard first.data.readableBytes == 0 else {
            writes[writes.startIndex] = first
            return (false, nil)
        }
        writes.removeFirst()
        flushed -= 1
        return (true, first.promise)
    }

    /// The first flushed writes as one buffer, taken off the queue, when at least two of them fit
    /// in `limit` bytes (small writes then leave as one frame); nil otherwise.
    mutating func takeCoalesced(limit: Int, allocator: ByteBufferAllocator) -> (data: ByteBuffer, promises: [EventLoopPromise<Void>])? {
        guard flushed > 1 else { return nil }
        var count = 0
        var total = 0
        for write in writes.prefix(flushed) {
            guard total + write.data.readableBytes <= limit else { break }
            total += write.data.readableBytes
            count += 1
        }
        guard count >= 2 else { return nil }
        var data = allocator.buffer(capacity: total)
        var promises: [EventLoopPromise<Void>] = []
        for _ in 0..<count {
            var write = writes.removeFirst()
            data.writeBuffer(&write.data)
            if let promise = write.promise { promises.append(promise) }
        }
        flushed -= count
        pendingBytes -= total
        return (data, promises)
    }

    /// Empties the queue; the promises of what it held, to fail.
    mutating func removeAll() -> [EventLoopPromise<Void>] {
        let promises = writes.compactMap(\.promise)
        writes.removeAll()
        flushed = 0
        pendingBytes = 0
        return promises
    }
}
