@testable import Gateway
import Testing
import UpstreamHTTP

@Suite(.timeLimit(.minutes(1))) struct CheapRandomTests {
    /// Successive values never repeat and every bit takes both values: request IDs stay apart
    /// and masking keys are not constant.
    @Test func valuesAreDistinctAndUseEveryBit() {
        var random = CheapRandom()
        var seen = Set<UInt64>()
        var ones = [Int](repeating: 0, count: 64)
        let count = 20_000
        for _ in 0..<count {
            let value = random.next()
            seen.insert(value)
            for bit in 0..<64 where value >> bit & 1 == 1 { ones[bit] += 1 }
        }
        #expect(seen.count == count)
        #expect(ones.allSatisfy { abs($0 - count / 2) < count / 20 }, "bit counts \(ones)")
    }

    @Test func requestIDsAreEightHexDigits() {
        let ids = (0..<1000).map { _ in RequestID.make() }
        #expect(ids.allSatisfy { $0.count == 8 && $0.allSatisfy(\.isHexDigit) })
        #expect(Set(ids).count == ids.count)
        // Every digit turns up, in lower case, in every place (leading zeros kept).
        for place in 0..<8 { #expect(Set(ids.map { Array($0)[place] }) == Set("0123456789abcdef"), "place \(place)") }
    }
}
