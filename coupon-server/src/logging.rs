//! Logs: JSON lines on stderr, and one line per request with its method, route template,
//! status, latency and key name (never the raw path, a key, a token or a body).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::auth::Caller;

/// The target of the per-request lines, to filter them with `RUST_LOG`.
pub const ACCESS_TARGET: &str = "coupon_server::access";

/// Sends `tracing` events to stderr as JSON lines, at `info` unless `RUST_LOG` says otherwise.
/// Does nothing if a global subscriber is already set.
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The middleware writing one line per request. The route is the matched template (such as
/// `/coupons/redeem/{code}`), so codes, user ids and tokens in paths never reach the log.
pub(crate) async fn access_log(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let response = next.run(req).await;
    let key = response.extensions().get::<Caller>().map(Caller::label);
    tracing::info!(
        target: ACCESS_TARGET,
        method = %method,
        route = route.as_deref().unwrap_or("(no route)"),
        status = response.status().as_u16(),
        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
        key = key.as_deref().unwrap_or("-"),
        "request"
    );
    response
}
