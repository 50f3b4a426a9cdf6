import NIOHTTP1

/// `GET /dashboard`: one self-contained page (HTML, CSS and our own script; no external fetches)
/// that reads the admin API with the token it asks for once.
enum DashboardPage {
    static let response: GatewayResponse = {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/html; charset=utf-8")
        headers.add(name: "cache-control", value: "no-cache")
        // Nothing but this page's own inline code and same-origin API calls.
        headers.add(name: "content-security-policy",
                    value: "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
        headers.add(name: "x-content-type-options", value: "nosniff")
        headers.add(name: "referrer-policy", value: "no-referrer")
        return GatewayResponse(status: .ok, headers: headers, body: PackageResources.dashboard_html)
    }()
}
