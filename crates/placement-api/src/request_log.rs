//! What the API knows about a request that the access log wants: the request's ids and who
//! made it. The request context (`context.rs`) puts one [`RequestLog`] into every response's
//! extensions; the access-log layer in front of the router (`placementd`) reads it back, so
//! one line per request can name its ids and caller without the layer parsing anything again.

/// The ids and caller of one request, as placed in the response's extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestLog {
    /// This request's own id, `req-<uuid>` (also in `openstack-request-id`).
    pub request_id: String,
    /// The caller's `X-Openstack-Request-Id` when it was a valid `req-<uuid>`: the id of the
    /// whole operation across services (oslo's "global request id").
    pub global_request_id: Option<String>,
    /// The authenticated user, when known (Keystone or noauth2).
    pub user_id: Option<String>,
    /// The authenticated project, when known.
    pub project_id: Option<String>,
}
