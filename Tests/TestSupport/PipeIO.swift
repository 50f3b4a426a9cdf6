public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads (and writes) a child's pipe with plain `read(2)`, retrying a call a signal interrupted. Foundation's
/// `FileHandle` on Linux stops the whole process with a fatal error on `EINTR`, which a test
/// process that starts and reaps many children meets now and then under load.
public enum PipeIO {
    /// What one read returns: some bytes, or none at the end of the stream (or on an error).
    public static func some(_ handle: FileHandle) -> Data {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
            if count >= 0 { return Data(chunk[..<count]) }
            if errno != EINTR { return Data() }
        }
    }

    /// Writes all of `data`, retrying interrupted writes; gives up quietly when the reader is gone.
    public static func write(_ data: Data, to handle: FileHandle) {
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let count = Glibc.write(handle.fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if count > 0 { offset += count } else if count < 0, errno == EINTR { continue } else { return }
            }
        }
    }

    /// Everything until the end of the stream.
    public static func toEnd(_ handle: FileHandle) -> Data {
        var all = Data()
        while true {
            let chunk = some(handle)
            if chunk.isEmpty { return all }
            all.append(chunk)
        }
    }
}
