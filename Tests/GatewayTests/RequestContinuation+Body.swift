@testable import Gateway

extension RequestContinuation {
    /// The continuation state of a body read on its own (the gateway reads it with the rest of
    /// the request's summary).
    init(body: some Collection<UInt8>, turnStateHeader: String?) {
        self.init(summary: ResponsesRequestSummary(json: body), body: body, turnStateHeader: turnStateHeader)
    }
}
