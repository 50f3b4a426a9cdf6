/// Bytes that are not the HTTP/1.1 the reader expected; the connection cannot go on.
package struct HTTPWireFailure: Error, Equatable, CustomStringConvertible {
    package let description: String

    package init(_ description: String) {
        self.description = description
    }
}
