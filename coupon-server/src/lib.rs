//! # coupon-server
//!
//! The coupon service over HTTP (SPEC §10), on top of the same library as the CLI and on any
//! [`CouponStore`]: `coupon serve` runs [`serve`].
//!
//! - [`router`] builds the axum [`Router`]: the endpoints ([`routes`]), bearer API keys with
//!   roles checked against a cache of the active keys (`auth`), a per-key rate limit
//!   (`ratelimit`), body limits, a request timeout, and one log line per request ([`logging`]).
//! - Every failure is a [`Problem`] `{kind, message}` with one status per [`ProblemKind`].
//! - [`openapi::document`] is the OpenAPI 3.1 document, also served at `/openapi.json`.
//! - [`serve`] runs a server until SIGTERM or Ctrl-C and lets requests in flight finish;
//!   [`serve_with_shutdown`] does the same until a future completes.
//!
//! Library calls are synchronous; the handlers run them on Tokio's blocking pool, so the store's
//! connection pool is what bounds the concurrent transactions.
//!
//! ```no_run
//! use coupon_core::{Coupons, MemoryStore};
//! use coupon_server::ServerConfig;
//!
//! let coupons = Coupons::new(MemoryStore::new());
//! let config = ServerConfig {
//!     bind: "127.0.0.1:0".parse()?,
//!     ..ServerConfig::default()
//! };
//! // Logs `{"message":"listening","address":"127.0.0.1:PORT",…}` on stderr, then serves until
//! // SIGTERM or Ctrl-C.
//! coupon_server::serve(coupons, config)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod auth;
mod extract;
pub mod logging;
pub mod openapi;
mod problem;
mod ratelimit;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use coupon_core::apikey::Role;
use coupon_core::store::CouponStore;
use coupon_core::Coupons;

pub use auth::Caller;
pub use problem::{Problem, ProblemKind};

use crate::auth::{Auth, Gate};
use crate::ratelimit::RateLimit;

/// The largest JSON body, except for `POST /coupons/codes`.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// The largest body of `POST /coupons/codes`.
pub const IMPORT_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// How the server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Where to listen; port 0 picks a free port (the log says which).
    pub bind: SocketAddr,
    /// Requests per second each API key may send, with a burst of as many; 0 turns the limit
    /// off. Default 1000.
    pub rate_limit: u32,
    /// How long a request may take before it is answered `503 timeout`. Default 30 s.
    pub request_timeout: Duration,
    /// How long a client may take to send a request's headers, counted from when the server
    /// waits for them (on a kept-alive connection, from the end of the previous response);
    /// then the connection is closed. A client that trickles its headers cannot hold a
    /// connection open for ever. Default 30 s.
    pub header_timeout: Duration,
    /// How often the active API keys are reloaded, so that new and revoked keys take effect.
    /// Default 1 s.
    pub key_refresh: Duration,
    /// The largest JSON body, except for `POST /coupons/codes`. Default [`BODY_LIMIT`].
    pub body_limit: usize,
    /// The largest body of `POST /coupons/codes`. Default [`IMPORT_BODY_LIMIT`].
    pub import_body_limit: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            rate_limit: 1000,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(30),
            key_refresh: Duration::from_secs(1),
            body_limit: BODY_LIMIT,
            import_body_limit: IMPORT_BODY_LIMIT,
        }
    }
}

/// Why a server could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address could not be bound (in use, not local, no permission …).
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime could not start, or the server failed while serving.
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The server's routes and middleware over `coupons`.
///
/// Starts a background task that reloads the active API keys every
/// [`ServerConfig::key_refresh`] while the router lives.
///
/// # Panics
/// Outside a Tokio runtime.
pub fn router<S: CouponStore + 'static>(coupons: Arc<Coupons<S>>, config: &ServerConfig) -> Router {
    let loader = {
        let coupons = coupons.clone();
        Arc::new(move || coupons.active_api_keys())
    };
    let auth = Auth::new(loader, RateLimit::per_second(config.rate_limit));
    auth::spawn_refresh(&auth, config.key_refresh);
    let document = serde_json::to_string(&openapi::document()).unwrap_or_default();
    let state = AppState {
        coupons,
        openapi: Arc::new(document),
    };
    let admin = |route: MethodRouter<AppState<S>>| {
        route.route_layer(middleware::from_fn_with_state(
            Gate {
                auth: auth.clone(),
                role: Role::Admin,
            },
            auth::require,
        ))
    };
    let client = |route: MethodRouter<AppState<S>>| {
        route.route_layer(middleware::from_fn_with_state(
            Gate {
                auth: auth.clone(),
                role: Role::Client,
            },
            auth::require,
        ))
    };
    use routes::*;
    Router::new()
        .route("/coupons", admin(post(create_book::<S>)))
        .route(
            "/coupons/{book_id}",
            client(get(show_book::<S>)).merge(admin(axum::routing::patch(update_book::<S>))),
        )
        .route(
            "/coupons/codes",
            admin(post(import_codes::<S>)).layer(DefaultBodyLimit::max(config.import_body_limit)),
        )
        .route("/coupons/generate", admin(post(generate_codes::<S>)))
        .route("/coupons/assign", client(post(assign_random::<S>)))
        .route("/coupons/assign/{code}", client(post(assign_code::<S>)))
        .route("/coupons/lock/{code}", client(post(lock_code::<S>)))
        .route("/coupons/unlock/{code}", client(post(unlock_code::<S>)))
        .route("/coupons/redeem/{code}", client(post(redeem_code::<S>)))
        .route("/coupons/void/{code}", admin(post(void_code::<S>)))
        .route("/users/{user_id}/coupons", client(get(user_coupons::<S>)))
        .route("/events", admin(get(events::<S>)))
        .route("/health", get(health::<S>))
        .route("/openapi.json", get(openapi::<S>))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(middleware::from_fn_with_state(
            config.request_timeout,
            time_limit,
        ))
        .layer(middleware::from_fn(logging::access_log))
}

/// Answers `503 timeout` to a request that takes longer than the timeout.
async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            ProblemKind::Timeout,
            format!(
                "the request took longer than {} s; it may still complete, so check before \
                 repeating a change",
                limit.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

/// Serves `coupons` on `config.bind` until SIGTERM or Ctrl-C, then stops accepting, lets the
/// requests in flight finish and returns. Logs JSON lines on stderr ([`logging::init`]),
/// the first one with the bound address (`"message":"listening","address":"…"`).
///
/// # Errors
/// [`ServeError::Bind`] when the address cannot be bound; [`ServeError::Io`] when the runtime
/// cannot start.
pub fn serve<S: CouponStore + 'static>(
    coupons: Coupons<S>,
    config: ServerConfig,
) -> Result<(), ServeError> {
    logging::init();
    serve_with_shutdown(
        coupons,
        config,
        |address| tracing::info!(address = %address, "listening"),
        shutdown_signal(),
    )
}

/// Serves `coupons` on `config.bind` on a runtime of its own until `shutdown` completes, then
/// stops accepting, lets the requests in flight finish and returns. `on_bound` is called with
/// the bound address before the first request is accepted.
///
/// # Errors
/// As [`serve`].
pub fn serve_with_shutdown<S, F>(
    coupons: Coupons<S>,
    config: ServerConfig,
    on_bound: impl FnOnce(SocketAddr),
    shutdown: F,
) -> Result<(), ServeError>
where
    S: CouponStore + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("coupon-server")
        .build()?;
    // The last handle on the service is dropped after the runtime: a store may block when it
    // closes its connections (the Postgres driver does), which is not allowed on the runtime.
    let coupons = Arc::new(coupons);
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|source| ServeError::Bind {
                address: config.bind,
                source,
            })?;
        let address = listener.local_addr()?;
        let app = router(coupons.clone(), &config);
        on_bound(address);
        accept(listener, app, config.header_timeout, shutdown).await;
        Ok(())
    });
    // A library call that outlived its request's timeout may still hold a blocking thread.
    runtime.shutdown_timeout(config.request_timeout);
    drop(coupons);
    if result.is_ok() {
        tracing::info!("stopped");
    }
    result
}

/// Serves each connection `listener` accepts with `app` (HTTP/1.1, closed when its headers take
/// longer than `header_timeout`) until `shutdown` completes; then stops accepting, closes the
/// idle connections and waits for the requests in flight.
async fn accept(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // A connection reset before it was accepted concerns that client only.
            Err(e) if is_connection_error(&e) => continue,
            // Out of file descriptors and the like: wait for some to be released.
            Err(e) => {
                tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection =
            connections.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        // A connection's error (the client went away, sent no valid request, or took too long
        // over its headers) concerns that client only: the connection is closed.
        tokio::spawn(async move { drop(connection.await) });
    }
    tracing::info!("shutting down: finishing the requests in flight");
    connections.shutdown().await;
}

/// Whether an error of `accept` is about one connection only.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
