import Foundation

/// A `multipart/form-data` body (RFC 7578) in parts — what `/v1/images/edits` clients send.
/// Pure; only what form uploads use: `Content-Disposition` names and file names, `Content-Type`.
struct MultipartForm {
    struct Part: Equatable {
        var name: String
        var filename: String?
        var contentType: String?
        var data: [UInt8]
    }

    struct Malformed: Error, Equatable {
        var message: String
    }

    var parts: [Part]

    /// The boundary of a `multipart/form-data; boundary=…` content type.
    static func boundary(in contentType: String) -> String? {
        guard contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            let value = pair[1].hasPrefix("\"") && pair[1].hasSuffix("\"") && pair[1].count >= 2 ? String(pair[1].dropFirst().dropLast()) : pair[1]
            return value.isEmpty || value.count > 70 ? nil : value
        }
        return nil
    }

    init(_ body: [UInt8], boundary: String) throws(Malformed) {
        let delimiter = Array("--\(boundary)".utf8)
        guard var position = Self.find(delimiter, in: body, from: 0) else { throw Malformed(message: "no multipart boundary in the body") }
        parts = []
        while true {
            position += delimiter.count
            // "--" after a delimiter closes the body.
            if body.count >= position + 2, body[position] == 0x2D, body[position + 1] == 0x2D { return }
            guard body.count >= position + 2, body[position] == 0x0D, body[position + 1] == 0x0A else { throw Malformed(message: "a multipart boundary is not followed by a line end") }
            position += 2
            guard let headEnd = Self.find(Array("\r\n\r\n".utf8), in: body, from: position) else { throw Malformed(message: "a part has no end of headers") }
            let headers = String(decoding: body[position..<headEnd], as: UTF8.self)
            let dataStart = headEnd + 4
            guard let next = Self.find(Array("\r\n".utf8) + delimiter, in: body, from: dataStart) else { throw Malformed(message: "a part is not closed by the boundary") }
            parts.append(try Self.part(headers: headers, data: Array(body[dataStart..<next])))
            position = next + 2
            guard parts.count <= 64 else { throw Malformed(message: "more than 64 parts") }
        }
    }

    private static func part(headers: String, data: [UInt8]) throws(Malformed) -> Part {
        var name: String?, filename: String?, contentType: String?
        for line in headers.split(separator: "\r\n") {
            let pair = line.split(separator: ":", maxSplits: 1)
            guard pair.count == 2 else { continue }
            let value = pair[1].trimmingCharacters(in: .whitespaces)
            switch pair[0].lowercased() {
            case "content-disposition":
                for parameter in value.split(separator: ";").dropFirst() {
                    let field = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    guard field.count == 2 else { continue }
                    let unquoted = field[1].hasPrefix("\"") && field[1].hasSuffix("\"") && field[1].count >= 2 ? String(field[1].dropFirst().dropLast()) : field[1]
                    if field[0] == "name" { name = unquoted }
                    if field[0] == "filename" { filename = unquoted }
                }
            case "content-type":
                contentType = value
            default:
                break
            }
        }
        guard let name else { throw Malformed(message: "a part has no name") }
        return Part(name: name, filename: filename, contentType: contentType, data: data)
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard let first = needle.first, haystack.count >= needle.count else { return nil }
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == first, haystack[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}
