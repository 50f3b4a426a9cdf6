import Foundation

/// The backend's image routes (`POST /backend-api/codex/images/generations` and `…/edits`):
/// the OpenAI Images JSON in, `{created, data: [{b64_json, revised_prompt}], usage}` out — with
/// the checks the backend makes (a prompt; 1 to 4 images; edits need images, each a base64 data
/// URL of a PNG, JPEG or WebP, or an https URL; a mask must be a PNG).
enum SimulatedImages {
    /// A 1×1 PNG.
    static let pixel = Data([
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63,
        0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x54, 0xA2, 0x4F, 0x5D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ])

    static func answer(_ request: [String: Any], edit: Bool, now: Int) -> Result<[String: Any], Problem> {
        guard let prompt = request["prompt"] as? String, !prompt.isEmpty else { return .failure(Problem("prompt is required")) }
        let n = request["n"] as? Int ?? 1
        guard (1...4).contains(n) else { return .failure(Problem("n must be from 1 to 4")) }
        var revised = prompt
        if edit {
            guard let images = request["images"] as? [[String: Any]], !images.isEmpty else { return .failure(Problem("an edit needs images")) }
            for image in images {
                guard let url = image["image_url"] as? String, url.hasPrefix("https://") || decodedImage(url) != nil else {
                    return .failure(Problem("images[].image_url must be a base64 data URL of a PNG, JPEG or WebP image, or an https URL"))
                }
            }
            if let mask = request["mask"] {
                guard let url = (mask as? [String: Any])?["image_url"] as? String, url.hasPrefix("data:image/png;base64,"), decodedImage(url) != nil else {
                    return .failure(Problem("mask.image_url must be a base64 data URL of a PNG"))
                }
                revised = "Edit the masked area of \(images.count) image\(images.count == 1 ? "" : "s"): \(prompt)"
            } else {
                revised = "Edit \(images.count) image\(images.count == 1 ? "" : "s"): \(prompt)"
            }
        }
        let item: [String: Any] = ["b64_json": pixel.base64EncodedString(), "revised_prompt": revised]
        return .success(["created": now, "data": Array(repeating: item, count: n), "output_format": "png",
                         "usage": ["input_tokens": 50, "output_tokens": 1056 * n, "total_tokens": 50 + 1056 * n,
                                   "input_tokens_details": ["text_tokens": 50, "image_tokens": 0]]])
    }

    private static func decodedImage(_ url: String) -> Data? {
        guard url.hasPrefix("data:image/"), let comma = url.firstIndex(of: ","), url[..<comma].hasSuffix(";base64"),
              let data = Data(base64Encoded: String(url[url.index(after: comma)...])) else { return nil }
        let bytes = [UInt8](data.prefix(12))
        let png = bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]), jpeg = bytes.starts(with: [0xFF, 0xD8, 0xFF])
        let webp = bytes.count == 12 && bytes.starts(with: Array("RIFF".utf8)) && Array(bytes[8..<12]) == Array("WEBP".utf8)
        return png || jpeg || webp ? data : nil
    }

    struct Problem: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }
}
