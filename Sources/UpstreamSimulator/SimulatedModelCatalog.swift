/// The backend's model catalog (`GET /backend-api/codex/models?client_version=…`,
/// codex-wire-2026.md §2) for one plan: richer plans see more models. Its ETag changes with
/// the list, and a request carrying the current one gets 304.
struct SimulatedModelCatalog {
    let planType: String

    var slugs: [String] {
        let base = ["gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex"]
        return planType == "pro" ? base + ["gpt-5.5-pro"] : base
    }

    var etag: String { "\"catalog-\(planType)-\(slugs.count)\"" }

    var json: [String: Any] {
        ["models": slugs.enumerated().map { index, slug in
            ["slug": slug, "display_name": slug.uppercased(), "priority": index, "visibility": "list", "supported_in_api": true,
             "minimal_client_version": "0.150.0", "prefer_websockets": true] as [String: Any]
        }]
    }
}
