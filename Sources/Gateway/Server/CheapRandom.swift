import Synchronization

/// Random numbers without a system call each: `SystemRandomNumberGenerator` asks the kernel
/// (`getrandom`) every time, which costs more than the rest of a request ID. A process-wide
/// counter, seeded once from the system generator, goes through SplitMix64's mixing function.
/// Good for request IDs and WebSocket masking keys; not for secrets.
struct CheapRandom: RandomNumberGenerator {
    private static let counter = Atomic<UInt64>(UInt64.random(in: .min ... .max))

    mutating func next() -> UInt64 {
        var value = Self.counter.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
