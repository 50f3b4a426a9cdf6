
/// Why an upstream exchange failed before a complete response arrived.
public struct UpstreamError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case connect
        case closedBeforeResponse
        case closedMidResponse
        case timeout
        case malformedResponse
        /// The request itself could not be put on the wire (a header that would break its framing).
        case unsendableRequest
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
