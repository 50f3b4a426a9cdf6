public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn`, in place of Foundation's `Process` on Linux: its
/// `run()` reads past a buffer while it lists `/proc/self/fd` (swift-corelibs-foundation #5472,
/// still in Swift 6.3.1), and now and then that took the whole test process down while a busy
/// suite held many descriptors open. Configured like `Process`; the child gets its three
/// standard streams and no other descriptor of this process, an empty signal mask and default
/// signal handling.
public final class SpawnedProcess: @unchecked Sendable {
    /// Where one of the child's standard streams goes.
    public enum Stream {
        /// The same stream as this process's.
        case inherited
        case nullDevice
        /// The child's end of the pipe: its read end for input, its write end for output. This
        /// process's copy of that end is closed once the child runs, so end of file arrives
        /// when the child (and its children) are done with it.
        case pipe(Pipe)
    }

    public var executableURL: URL?
    public var arguments: [String] = []
    /// nil: this process's environment.
    public var environment: [String: String]?
    public var currentDirectoryURL: URL?
    public var standardInput = Stream.inherited
    public var standardOutput = Stream.inherited
    public var standardError = Stream.inherited
    /// Called once, on a thread of its own, when the child has exited.
    public var terminationHandler: (@Sendable (SpawnedProcess) -> Void)?

    private let lock = NSLock()
    private var pid: pid_t = 0
    private var status: Int32?
    private let exited = DispatchSemaphore(value: 0)

    public init() {}

    public var processIdentifier: Int32 { lock.withLock { pid } }

    public var isRunning: Bool { lock.withLock { pid != 0 && status == nil } }

    /// The exit code, or the number of the signal that ended the child (as `Process` reports it).
    public var terminationStatus: Int32 { lock.withLock { status ?? 0 } }

    public struct SpawnFailure: Error, CustomStringConvertible {
        public var description: String
    }

    public func run() throws {
        guard let executableURL else { throw SpawnFailure(description: "no executable") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (stream, target) in [(standardInput, STDIN_FILENO), (standardOutput, STDOUT_FILENO), (standardError, STDERR_FILENO)] {
            switch stream {
            case .inherited: break
            case .nullDevice: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == STDIN_FILENO ? O_RDONLY : O_WRONLY, 0)
            case .pipe(let pipe):
                let handle = target == STDIN_FILENO ? pipe.fileHandleForReading : pipe.fileHandleForWriting
                posix_spawn_file_actions_adddup2(&actions, handle.fileDescriptor, target)
            }
        }
        guard let closeFrom = Self.closeFrom, closeFrom(&actions, 3) == 0 else { throw SpawnFailure(description: "cannot keep descriptors from the child") }
        if let currentDirectoryURL, Self.changeDirectory?(&actions, currentDirectoryURL.path) != 0 {
            throw SpawnFailure(description: "cannot change to \(currentDirectoryURL.path) in the child")
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t(), allSignals = sigset_t()
        sigemptyset(&noSignals)
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let path = executableURL.path
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let variables = environment ?? ProcessInfo.processInfo.environment
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, path, &actions, &attributes, argv, envp)
        guard result == 0 else { throw SpawnFailure(description: "cannot start \(path): \(String(cString: strerror(result)))") }
        lock.withLock { pid = child }
        // This process's copies of the child's ends: with them open, end of file never comes.
        var closed: Set<ObjectIdentifier> = []
        for (stream, isInput) in [(standardInput, true), (standardOutput, false), (standardError, false)] {
            guard case .pipe(let pipe) = stream else { continue }
            let handle = isInput ? pipe.fileHandleForReading : pipe.fileHandleForWriting
            // Output and error may share one pipe: its end is closed once.
            if closed.insert(ObjectIdentifier(handle)).inserted { try? handle.close() }
        }
        let reaper = Thread { [self, child] in
            var code: Int32 = 0
            while waitpid(child, &code, 0) == -1, errno == EINTR {}
            // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out: the macros are not imported.
            let ended = code & 0x7F == 0 ? (code >> 8) & 0xFF : code & 0x7F
            lock.withLock { status = ended }
            exited.signal()
            terminationHandler?(self)
        }
        reaper.start()
    }

    /// Asks the child to end (SIGTERM).
    public func terminate() {
        let child = lock.withLock { status == nil ? pid : 0 }
        if child != 0 { kill(child, SIGTERM) }
    }

    /// Blocks until the child has exited (a plain wait, not a spinning run loop).
    public func waitUntilExit() {
        exited.wait()
        exited.signal()
    }

    // glibc has both since 2.34 and 2.29, but the Swift module does not import them.
    private typealias CloseFromAction = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    private typealias ChangeDirectoryAction = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32
    private static let closeFrom = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFromAction.self) }
    private static let changeDirectory = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np")
        .map { unsafeBitCast($0, to: ChangeDirectoryAction.self) }
}
