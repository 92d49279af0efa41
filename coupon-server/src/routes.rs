//! The endpoints of SPEC §10: request types, handlers and their OpenAPI descriptions. Every
//! library call runs on Tokio's blocking pool.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use coupon_core::store::CouponStore;
use coupon_core::{
    Book, BookDetails, BookId, BookPatch, BookSettings, CodeState, Coupon, Coupons, Event,
    GenerateReport, LockGrant, Receipt, RedeemRequest, Timestamp, MAX_EVENTS_PAGE,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::problem::{Problem, ProblemKind};

/// What every handler shares: the service and the OpenAPI document.
pub(crate) struct AppState<S> {
    pub(crate) coupons: Arc<Coupons<S>>,
    pub(crate) openapi: Arc<String>,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState {
            coupons: self.coupons.clone(),
            openapi: self.openapi.clone(),
        }
    }
}

/// Runs `f` on the service in Tokio's blocking pool. A `backend` failure is `unavailable`
/// (503) when the database does not answer a ping right after it, else `backend` (500).
async fn call<S, T>(
    state: &AppState<S>,
    f: impl FnOnce(&Coupons<S>) -> coupon_core::Result<T> + Send + 'static,
) -> Result<T, Problem>
where
    S: CouponStore + 'static,
    T: Send + 'static,
{
    let coupons = state.coupons.clone();
    let answered = tokio::task::spawn_blocking(move || {
        let result = f(&coupons);
        let unreachable = matches!(&result, Err(e) if e.kind() == coupon_core::ErrorKind::Backend)
            && coupons.ping().is_err();
        (result, unreachable)
    })
    .await;
    match answered {
        Ok((Err(e), true)) => {
            tracing::error!(error = %e, "the database does not answer");
            Err(Problem::new(
                ProblemKind::Unavailable,
                "the database does not answer; try again later",
            ))
        }
        Ok((result, _)) => result.map_err(Problem::from),
        Err(e) => {
            tracing::error!(error = %e, "a request's library call panicked");
            Err(Problem::backend())
        }
    }
}

/// A JSON answer with `status`.
fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "an answer could not be serialized");
            Problem::backend().into_response()
        }
    }
}

/// The settings of a new book. Fields left out take their defaults.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBook {
    /// The name, 1–255 characters after trimming.
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub name: String,
    /// Free text, at most 10,000 characters.
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    /// Before this time codes cannot be redeemed or locked (they can be assigned).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_from: Option<Timestamp>,
    /// From this time on the book is expired; after `valid_from` when both are set.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<Timestamp>,
    /// How many times the holder of a code may redeem it (default 1).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_redemptions_per_user: Option<u32>,
    /// How many codes of the book one user may hold (`null` or absent: unlimited).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_codes_per_user: Option<u32>,
    /// The pattern `generate` draws codes from, e.g. `SUMMER-[A-Z0-9]{8}`.
    #[serde(default)]
    pub code_pattern: Option<String>,
    /// The default lock TTL in seconds, 1 to 86400 (default 300).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400)]
    pub lock_ttl_seconds: Option<u64>,
}

impl NewBook {
    fn settings(self) -> BookSettings {
        let defaults = BookSettings::new(self.name);
        BookSettings {
            description: self.description,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            max_redemptions_per_user: self
                .max_redemptions_per_user
                .unwrap_or(defaults.max_redemptions_per_user),
            max_codes_per_user: self.max_codes_per_user,
            code_pattern: self.code_pattern,
            lock_ttl: self
                .lock_ttl_seconds
                .map_or(defaults.lock_ttl, Duration::from_secs),
            ..defaults
        }
    }
}

/// Creates a book.
#[utoipa::path(
    post, path = "/coupons", tag = "admin", security(("bearer" = [])),
    request_body = NewBook,
    responses(
        (status = 201, description = "The new book", body = Book),
    )
)]
pub(crate) async fn create_book<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
    JsonBody(book): JsonBody<NewBook>,
) -> Result<Response, Problem> {
    let settings = book.settings();
    let book = call(&state, move |c| c.create_book(&settings)).await?;
    Ok(json(StatusCode::CREATED, &book))
}

/// A book with its live statistics.
#[utoipa::path(
    get, path = "/coupons/{book_id}", tag = "client", security(("bearer" = [])),
    params(("book_id" = i64, Path, description = "The book's id")),
    responses(
        (status = 200, description = "The book and its statistics", body = BookDetails),
        (status = 404, description = "`not_found`: the book or code does not exist", body = Problem),
    )
)]
pub(crate) async fn show_book<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
    PathParams(id): PathParams<BookId>,
) -> Result<Response, Problem> {
    let book = call(&state, move |c| c.book(id)).await?;
    Ok(json(StatusCode::OK, &book))
}

/// Changes a book's settings: fields left out stay as they are; `null` clears an optional
/// setting (`max_codes_per_user: null` is unlimited).
#[utoipa::path(
    patch, path = "/coupons/{book_id}", tag = "admin", security(("bearer" = [])),
    params(("book_id" = i64, Path, description = "The book's id")),
    request_body = BookPatch,
    responses(
        (status = 200, description = "The changed book", body = Book),
        (status = 404, description = "`not_found`: the book or code does not exist", body = Problem),
    )
)]
pub(crate) async fn update_book<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
    PathParams(id): PathParams<BookId>,
    JsonBody(patch): JsonBody<BookPatch>,
) -> Result<Response, Problem> {
    let book = call(&state, move |c| c.update_book(id, &patch)).await?;
    Ok(json(StatusCode::OK, &book))
}

/// Codes to add to a book.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportCodes {
    /// The book.
    #[schema(value_type = i64)]
    pub book_id: BookId,
    /// The codes; they are normalized (trimmed, upper-cased).
    pub codes: Vec<String>,
    /// Add the valid codes and report the others, instead of refusing the whole list.
    #[serde(default)]
    pub skip_invalid: bool,
}

/// A refused code of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvalidCode {
    /// Its 0-based position in `codes`.
    pub index: u64,
    /// The code as given (cut to a readable length).
    pub code: String,
    /// Why it was refused.
    pub reason: String,
}

/// The result of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    /// Codes added to the book.
    pub inserted: u64,
    /// Codes already in the book, or repeated in the list.
    pub duplicates: u64,
    /// The first refused codes (at most 1000).
    pub invalid: Vec<InvalidCode>,
    /// How many codes were refused.
    pub invalid_total: u64,
}

impl From<coupon_core::ImportReport> for ImportReport {
    fn from(report: coupon_core::ImportReport) -> Self {
        ImportReport {
            inserted: report.inserted,
            duplicates: report.duplicates,
            invalid: report
                .invalid
                .into_iter()
                .map(|row| InvalidCode {
                    index: row.line,
                    code: row.code,
                    reason: row.reason,
                })
                .collect(),
            invalid_total: report.invalid_total,
        }
    }
}

/// Adds codes to a book, all or nothing unless `skip_invalid`: with a refused code (invalid, or
/// in another book) nothing is added and the answer is 400 quoting the first ones by index.
/// Codes already in the book count as duplicates. Bodies may have up to 64 MiB.
#[utoipa::path(
    post, path = "/coupons/codes", tag = "admin", security(("bearer" = [])),
    request_body = ImportCodes,
    responses(
        (status = 200, description = "What was added", body = ImportReport),
        (status = 404, description = "`not_found`: the book or code does not exist", body = Problem),
    )
)]
pub(crate) async fn import_codes<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
    JsonBody(import): JsonBody<ImportCodes>,
) -> Result<Response, Problem> {
    let report = call(&state, move |c| {
        c.import_list(import.book_id, import.codes, import.skip_invalid)
    })
    .await?;
    Ok(json(StatusCode::OK, &ImportReport::from(report)))
}

/// A generation of codes from the book's pattern.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateCodes {
    /// The book; it needs a `code_pattern`.
    #[schema(value_type = i64)]
    pub book_id: BookId,
    /// How many new codes, at least 1.
    #[schema(minimum = 1)]
    pub count: u64,
    /// Allow more than 1 in 1000 of the pattern's codes to exist (easy to guess).
    #[serde(default)]
    pub allow_guessable: bool,
}

/// Generates exactly `count` new codes, unique in the whole store, uniformly from the book's
/// pattern: all or none.
#[utoipa::path(
    post, path = "/coupons/generate", tag = "admin", security(("bearer" = [])),
    request_body = GenerateCodes,
    responses(
        (status = 200, description = "What was generated", body = GenerateReport),
        (status = 404, description = "`not_found`: the book or code does not exist", body = Problem),
        (status = 422, description = "`infeasible`: the pattern has too few free codes, or they would be too easy to guess", body = Problem),
    )
)]
pub(crate) async fn generate_codes<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
    JsonBody(generate): JsonBody<GenerateCodes>,
) -> Result<Response, Problem> {
    if generate.count == 0 {
        return Err(Problem::invalid_input(
            "count 0 is out of range; generate at least 1 code",
        ));
    }
    let report = call(&state, move |c| {
        c.generate_codes(generate.book_id, generate.count, generate.allow_guessable)
    })
    .await?;
    Ok(json(StatusCode::OK, &report))
}

/// A random assignment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRandom {
    /// The book to draw from.
    #[schema(value_type = i64)]
    pub book_id: BookId,
    /// The user: 1–128 printable ASCII characters, no surrounding spaces.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[!-~]([ -~]*[!-~])?$")]
    pub user_id: String,
    /// Repeating the call with the same key returns the same code.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub idempotency_key: Option<String>,
}

/// Gives the user one available code of the book, chosen at random.
#[utoipa::path(
    post, path = "/coupons/assign", tag = "client", security(("bearer" = [])),
    request_body = AssignRandom,
    responses(
        (status = 200, description = "The assigned code", body = Coupon),
        (status = 404, description = "`not_found`: the book or code does not exist", body = Problem),
        (status = 409, description = "A rule refused the request (`already_exists`, `limit_reached`, `sold_out`, `not_owner`, `locked`, `bad_lock_token`, `exhausted`, `void`, `not_yet_valid`, `expired`), or `conflict`: transient contention, try again after Retry-After", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait, with `conflict` only"))),
    )
)]
pub(crate) async fn assign_random<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
    JsonBody(assign): JsonBody<AssignRandom>,
) -> Result<Response, Problem> {
    let coupon = call(&state, move |c| {
        c.assign_random(
            assign.book_id,
            &assign.user_id,
            assign.idempotency_key.as_deref(),
        )
    })
    .await?;
    Ok(json(StatusCode::OK, &coupon))
}

/// An assignment of a given code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignCode {
    /// The user: 1–128 printable ASCII characters, no surrounding spaces.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[!-~]([ -~]*[!-~])?$")]
    pub user_id: String,
}

/// Assigns the code to the user; a code the user already holds is returned as it is.
#[utoipa::path(
    post, path = "/coupons/assign/{code}", tag = "client", security(("bearer" = [])),
    params(("code" = String, Path, description = "The code (normalized: `summer-ab12` finds `SUMMER-AB12`)")),
    request_body = AssignCode,
    responses(
        (status = 200, description = "The assigned code", body = Coupon),
        (status = 404, description = "`not_found`: the book or code does not exist", body = Problem),
        (status = 409, description = "A rule refused the request (`already_exists`, `limit_reached`, `sold_out`, `not_owner`, `locked`, `bad_lock_token`, `exhausted`, `void`, `not_yet_valid`, `expired`), or `conflict`: transient contention, try again after Retry-After", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait, with `conflict` only"))),
    )
)]
pub(crate) async fn assign_code<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
    PathParams(code): PathParams<String>,
    JsonBody(assign): JsonBody<AssignCode>,
) -> Result<Response, Problem> {
    let coupon = call(&state, move |c| c.assign_code(&code, &assign.user_id)).await?;
    Ok(json(StatusCode::OK, &coupon))
}

/// A lock for a user's checkout.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockCode {
    /// The user: 1–128 printable ASCII characters, no surrounding spaces.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[!-~]([ -~]*[!-~])?$")]
    pub user_id: String,
    /// How long the lock lasts, 1 to 86400 seconds (default: the book's lock TTL).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400)]
    pub ttl_seconds: Option<u64>,
    /// The token of the live lock, to extend it.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub token: Option<String>,
}

/// Locks the code for the user's checkout (assigning it if it is available) and returns the
/// lock's secret token; presenting the token of the live lock extends it.
#[utoipa::path(
    post, path = "/coupons/lock/{code}", tag = "client", security(("bearer" = [])),
    params(("code" = String, Path, description = "The code")),
    request_body = LockCode,
    responses(
        (status = 200, description = "The granted lock", body = LockGrant),
        (status = 404, description = "`not_found`: the book or code does not exist", body = Problem),
        (status = 409, description = "A rule refused the request (`already_exists`, `limit_reached`, `sold_out`, `not_owner`, `locked`, `bad_lock_token`, `exhausted`, `void`, `not_yet_valid`, `expired`), or `conflict`: transient contention, try again after Retry-After", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait, with `conflict` only"))),
    )
)]
pub(crate) async fn lock_code<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
    PathParams(code): PathParams<String>,
    JsonBody(lock): JsonBody<LockCode>,
) -> Result<Response, Problem> {
    let ttl = lock.ttl_seconds.map(Duration::from_secs);
    let grant = call(&state, move |c| {
        c.lock(&code, &lock.user_id, ttl, lock.token.as_deref())
    })
    .await?;
    Ok(json(StatusCode::OK, &grant))
}

/// The release of a lock.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlockCode {
    /// The live lock's token.
    #[schema(min_length = 1, max_length = 255)]
    pub token: String,
}

/// Releases the code's live lock early. Without a live lock it succeeds and changes nothing.
#[utoipa::path(
    post, path = "/coupons/unlock/{code}", tag = "client", security(("bearer" = [])),
    params(("code" = String, Path, description = "The code")),
    request_body = UnlockCode,
    responses(
        (status = 204, description = "Unlocked (or there was no live lock)"),
        (status = 404, description = "`not_found`: the book or code does not exist", body = Problem),
        (status = 409, description = "A rule refused the request (`already_exists`, `limit_reached`, `sold_out`, `not_owner`, `locked`, `bad_lock_token`, `exhausted`, `void`, `not_yet_valid`, `expired`), or `conflict`: transient contention, try again after Retry-After", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait, with `conflict` only"))),
    )
)]
pub(crate) async fn unlock_code<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
    PathParams(code): PathParams<String>,
    JsonBody(unlock): JsonBody<UnlockCode>,
) -> Result<Response, Problem> {
    call(&state, move |c| c.unlock(&code, &unlock.token)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A redemption.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemCode {
    /// The user holding the code: 1–128 printable ASCII characters.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[!-~]([ -~]*[!-~])?$")]
    pub user_id: String,
    /// The live lock's token, needed when the code is locked.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub lock_token: Option<String>,
    /// The order id: a redeem repeated with it returns the first receipt (`replayed: true`).
    /// The `Idempotency-Key` header means the same.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub order_id: Option<String>,
    /// Free JSON kept with the redemption (up to 64 KiB).
    #[serde(default)]
    pub context: Option<serde_json::Value>,
}

/// The `Idempotency-Key` header.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Redeems the code once for the user. A redeem repeated with the same `order_id` (or
/// `Idempotency-Key`) returns the original receipt with `replayed: true` and counts nothing.
#[utoipa::path(
    post, path = "/coupons/redeem/{code}", tag = "client", security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "The code"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "The order id, if the body has none (the same one if it has)"),
    ),
    request_body = RedeemCode,
    responses(
        (status = 200, description = "The receipt", body = Receipt),
        (status = 404, description = "`not_found`: the book or code does not exist", body = Problem),
        (status = 409, description = "A rule refused the request (`already_exists`, `limit_reached`, `sold_out`, `not_owner`, `locked`, `bad_lock_token`, `exhausted`, `void`, `not_yet_valid`, `expired`), or `conflict`: transient contention, try again after Retry-After", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait, with `conflict` only"))),
    )
)]
pub(crate) async fn redeem_code<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
    PathParams(code): PathParams<String>,
    headers: HeaderMap,
    JsonBody(redeem): JsonBody<RedeemCode>,
) -> Result<Response, Problem> {
    let header_key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => Some(value.to_str().map(str::to_owned).map_err(|_| {
            Problem::invalid_input("the Idempotency-Key header must be printable ASCII")
        })?),
    };
    let order_id = match (redeem.order_id, header_key) {
        (Some(body), Some(header)) if body != header => {
            return Err(Problem::invalid_input(
                "order_id and the Idempotency-Key header differ; send one, or the same value",
            ))
        }
        (body, header) => body.or(header),
    };
    let user = redeem.user_id;
    let request = RedeemRequest {
        lock_token: redeem.lock_token,
        order_id,
        context: redeem.context,
    };
    let receipt = call(&state, move |c| c.redeem(&code, &user, &request)).await?;
    Ok(json(StatusCode::OK, &receipt))
}

/// Voids the code: it can never be assigned or redeemed again; its history is kept. Voiding a
/// void code changes nothing.
#[utoipa::path(
    post, path = "/coupons/void/{code}", tag = "admin", security(("bearer" = [])),
    params(("code" = String, Path, description = "The code")),
    responses(
        (status = 200, description = "The void code", body = Coupon),
        (status = 404, description = "`not_found`: the book or code does not exist", body = Problem),
    )
)]
pub(crate) async fn void_code<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
    PathParams(code): PathParams<String>,
) -> Result<Response, Problem> {
    let coupon = call(&state, move |c| c.void_code(&code)).await?;
    Ok(json(StatusCode::OK, &coupon))
}

/// The filters of a user's coupons.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserCouponsQuery {
    /// Only codes of this book.
    #[param(value_type = Option<i64>)]
    pub book_id: Option<BookId>,
    /// Only codes in this state.
    #[param(inline)]
    pub state: Option<CodeState>,
}

/// Every code the user holds (void ones included), by book, then assignment time. An unknown
/// user has an empty list; an unknown book is 404.
#[utoipa::path(
    get, path = "/users/{user_id}/coupons", tag = "client", security(("bearer" = [])),
    params(
        ("user_id" = String, Path, description = "The user, percent-encoded"),
        UserCouponsQuery,
    ),
    responses(
        (status = 200, description = "The user's codes", body = Vec<Coupon>),
        (status = 404, description = "`not_found`: the book or code does not exist", body = Problem),
    )
)]
pub(crate) async fn user_coupons<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
    PathParams(user): PathParams<String>,
    QueryParams(query): QueryParams<UserCouponsQuery>,
) -> Result<Response, Problem> {
    let coupons = call(&state, move |c| {
        c.user_coupons(&user, query.book_id, query.state)
    })
    .await?;
    Ok(json(StatusCode::OK, &coupons))
}

/// The page of the event log to read.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Read the events after this sequence number (default 0: from the start).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// How many events at most, 1 to 10000 (default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

/// The event log, in order, after a cursor: every state change, committed with it.
#[utoipa::path(
    get, path = "/events", tag = "admin", security(("bearer" = [])),
    params(EventsQuery),
    responses((status = 200, description = "The events", body = Vec<Event>))
)]
pub(crate) async fn events<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
    QueryParams(query): QueryParams<EventsQuery>,
) -> Result<Response, Problem> {
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(100);
    if limit > MAX_EVENTS_PAGE {
        // Checked here too, so that a huge number is refused before the store is asked.
        return Err(Problem::invalid_input(format!(
            "limit {limit} is out of range; use 1 to {MAX_EVENTS_PAGE}"
        )));
    }
    let events = call(&state, move |c| c.events(after, limit)).await?;
    Ok(json(StatusCode::OK, &events))
}

/// The answer of a healthy server.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    pub status: String,
}

/// Whether the server and its database answer. Needs no API key.
#[utoipa::path(
    get, path = "/health", tag = "open",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "`unavailable`: the database does not answer; `timeout`: no answer in time", body = Problem),
    )
)]
pub(crate) async fn health<S: CouponStore + 'static>(State(state): State<AppState<S>>) -> Response {
    match call(&state, |c| c.ping()).await {
        Ok(()) => json(
            StatusCode::OK,
            &Health {
                status: "ok".into(),
            },
        ),
        Err(problem) => {
            tracing::warn!(kind = problem.kind.as_str(), "health check failed");
            Problem::new(
                ProblemKind::Unavailable,
                "the database does not answer; see the server's log",
            )
            .into_response()
        }
    }
}

/// This document: OpenAPI 3.1, generated from the code. Needs no API key.
#[utoipa::path(
    get, path = "/openapi.json", tag = "open",
    responses((status = 200, description = "The OpenAPI document", body = Object))
)]
pub(crate) async fn openapi<S: CouponStore + 'static>(
    State(state): State<AppState<S>>,
) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from(state.openapi.as_str().to_owned()),
    )
        .into_response()
}

/// The answer to a path no route has.
pub(crate) async fn no_route() -> Problem {
    Problem::new(
        ProblemKind::NotFound,
        "no endpoint has this path; see /openapi.json",
    )
}

/// The answer to a method a path does not have (axum adds the `Allow` header).
pub(crate) async fn wrong_method() -> Problem {
    Problem::new(
        ProblemKind::MethodNotAllowed,
        "this path does not take this method; the Allow header lists those it takes",
    )
}
