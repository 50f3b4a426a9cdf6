import Foundation
import NIOCore
import NIOHTTP1
import PoolCore

/// `POST /v1/images/generations` and `/v1/images/edits` as the Codex backend's image routes take
/// them (`{base}/images/generations`, `{base}/images/edits`, docs/images.md): the OpenAI Images
/// JSON as it is, and a multipart edit turned into that JSON with the files as data URLs.
enum ImageRequests {
    enum Outcome {
        case forward(ByteBuffer)
        case refused(GatewayResponse)
    }

    static let fields: Set<String> = ["model", "prompt", "n", "size", "quality", "background", "output_format", "output_compression",
                                      "moderation", "user", "response_format", "input_fidelity", "partial_images", "stream"]
    static let defaultModel = "gpt-image-2"

    static func translate(_ body: ByteBuffer, head: inout HTTPRequestHead, edit: Bool) -> Outcome {
        var json: [String: JSONValue]
        if let boundary = head.headers.first(name: "content-type").flatMap(MultipartForm.boundary) {
            guard edit else { return .refused(badRequest("images/generations takes JSON, not a form", parameter: nil)) }
            do {
                json = try form(MultipartForm(Array(body.readableBytesView), boundary: boundary))
            } catch let error as MultipartForm.Malformed {
                return .refused(badRequest("the form cannot be read: \(error.message)", parameter: nil))
            } catch let refusal as Refusal {
                return .refused(refusal.response)
            } catch {
                return .refused(badRequest("\(error)", parameter: nil))
            }
        } else {
            guard case .object(let object)? = JSONValue.parse(body.readableBytesView) else {
                return .refused(badRequest("the request body must be a JSON object (or a multipart form for edits)", parameter: nil))
            }
            json = object
        }
        if let unknown = json.keys.sorted().first(where: { !fields.contains($0) && !(edit && ($0 == "images" || $0 == "mask" || $0 == "image")) }) {
            return .refused(badRequest("Unsupported parameter: '\(unknown)'", parameter: unknown))
        }
        guard let prompt = json["prompt"]?.stringValue, !prompt.isEmpty else { return .refused(badRequest("prompt is required", parameter: "prompt")) }
        if json["response_format"]?.stringValue == "url" {
            return .refused(badRequest("response_format url is not available: images come back as b64_json", parameter: "response_format"))
        }
        if json["stream"]?.boolValue == true { return .refused(badRequest("streamed image generation is not supported", parameter: "stream")) }
        if let n = json["n"]?.numberValue, !(1...4).contains(n) { return .refused(badRequest("n must be from 1 to 4", parameter: "n")) }
        if edit {
            // JSON edits may name one image as `image` (a data URL or https URL) too.
            if json["images"] == nil, let image = json["image"]?.stringValue { json["images"] = .array([.object(["image_url": .string(image)])]) }
            json["image"] = nil
            guard let images = json["images"]?.arrayValue, !images.isEmpty, images.count <= 16 else {
                return .refused(badRequest("an edit needs 1 to 16 images", parameter: "images"))
            }
        }
        json["model"] = json["model"] ?? .string(defaultModel)
        head.headers.replaceOrAdd(name: "content-type", value: "application/json")
        head.headers.replaceOrAdd(name: "accept", value: "application/json")
        return .forward(ByteBuffer(bytes: JSONValue.object(json).serialized))
    }

    private struct Refusal: Error {
        var response: GatewayResponse
    }

    /// A multipart edit as JSON: text fields as they are, `image`/`image[]` files and `mask` as data URLs.
    private static func form(_ form: MultipartForm) throws -> [String: JSONValue] {
        var json: [String: JSONValue] = [:]
        var images: [JSONValue] = []
        for part in form.parts {
            switch part.name {
            case "image", "image[]":
                images.append(.object(["image_url": .string(try dataURL(part))]))
            case "mask":
                json["mask"] = .object(["image_url": .string(try dataURL(part))])
            default:
                let text = String(decoding: part.data, as: UTF8.self)
                if part.name == "n" || part.name == "output_compression" || part.name == "partial_images", let number = Int(text) {
                    json[part.name] = .integer(Int64(number))
                } else if part.name == "stream" {
                    json[part.name] = .bool(text == "true")
                } else {
                    json[part.name] = .string(text)
                }
            }
        }
        if !images.isEmpty { json["images"] = .array(images) }
        return json
    }

    /// A file part as a data URL, its type told by its first bytes (never by what the client claims).
    private static func dataURL(_ part: MultipartForm.Part) throws -> String {
        guard let type = imageType(part.data) else {
            throw Refusal(response: badRequest("\(part.name) must be a PNG, JPEG or WebP image", parameter: part.name))
        }
        guard part.data.count <= 20 << 20 else { throw Refusal(response: badRequest("\(part.name) is larger than 20 MB", parameter: part.name)) }
        return "data:\(type);base64," + Data(part.data).base64EncodedString()
    }

    static func imageType(_ bytes: [UInt8]) -> String? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) { return "image/webp" }
        return nil
    }

    private static func badRequest(_ message: String, parameter: String?) -> GatewayResponse {
        .error(.badRequest, type: "invalid_request_error", code: parameter == nil ? "invalid_request" : "invalid_parameter", message: message,
               extra: ["param": parameter.map(JSONValue.string) ?? .null])
    }
}
