//! Failures as HTTP answers: one [`ProblemKind`] per failure, one status per kind, and the JSON
//! body `{"kind": "...", "message": "..."}`.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use coupon_core::{Error, ErrorKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The kind of a failed request: every [`ErrorKind`] of the library, and the kinds only HTTP has.
///
/// Each kind has exactly one status ([`ProblemKind::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// 400: a bad field, code, user id, path or query parameter, malformed JSON, a wrong type,
    /// an unknown field, a missing or wrong `Content-Type`.
    InvalidInput,
    /// 400: a code pattern that cannot be used.
    InvalidPattern,
    /// 422: the pattern's space is too small or too guessable for the request.
    Infeasible,
    /// 404: the book or code does not exist, or no route has this path.
    NotFound,
    /// 409: the thing to create exists already.
    AlreadyExists,
    /// 409: the user holds as many codes of the book as allowed.
    LimitReached,
    /// 409: the book has no available code left.
    SoldOut,
    /// 409: the code belongs to another user.
    NotOwner,
    /// 409: the code is under a live lock and its token was not given.
    Locked,
    /// 409: the lock token is not the live lock's token.
    BadLockToken,
    /// 409: the code has no redemption left.
    Exhausted,
    /// 409: the code was voided.
    Void,
    /// 409: the book's validity window has not started.
    NotYetValid,
    /// 409: the book's validity window has ended.
    Expired,
    /// 409 with `Retry-After`: transient contention that the server already retried.
    Conflict,
    /// 500: the database failed; the details are in the server's log, never in the answer.
    Backend,
    /// 401 with `WWW-Authenticate: Bearer`: no API key, or an unknown or revoked one.
    Unauthorized,
    /// 403: the key's role may not call this endpoint.
    Forbidden,
    /// 405 with `Allow`: the path exists, the method does not.
    MethodNotAllowed,
    /// 413: the request body is larger than allowed.
    PayloadTooLarge,
    /// 429 with `Retry-After`: the key sent more requests than its rate limit allows.
    RateLimited,
    /// 503: the request took longer than the server's request timeout. It may still complete.
    Timeout,
    /// 503: the database does not answer (`/health`, a store failure after which a health read
    /// fails too, or API keys that cannot be loaded).
    Unavailable,
}

impl ProblemKind {
    /// Every kind.
    pub const ALL: [ProblemKind; 23] = [
        ProblemKind::InvalidInput,
        ProblemKind::InvalidPattern,
        ProblemKind::Infeasible,
        ProblemKind::NotFound,
        ProblemKind::AlreadyExists,
        ProblemKind::LimitReached,
        ProblemKind::SoldOut,
        ProblemKind::NotOwner,
        ProblemKind::Locked,
        ProblemKind::BadLockToken,
        ProblemKind::Exhausted,
        ProblemKind::Void,
        ProblemKind::NotYetValid,
        ProblemKind::Expired,
        ProblemKind::Conflict,
        ProblemKind::Backend,
        ProblemKind::Unauthorized,
        ProblemKind::Forbidden,
        ProblemKind::MethodNotAllowed,
        ProblemKind::PayloadTooLarge,
        ProblemKind::RateLimited,
        ProblemKind::Timeout,
        ProblemKind::Unavailable,
    ];

    /// The kind of a library error. A kind the server does not know yet is `backend`.
    pub fn from_error_kind(kind: ErrorKind) -> ProblemKind {
        match kind {
            ErrorKind::InvalidInput => ProblemKind::InvalidInput,
            ErrorKind::InvalidPattern => ProblemKind::InvalidPattern,
            ErrorKind::Infeasible => ProblemKind::Infeasible,
            ErrorKind::NotFound => ProblemKind::NotFound,
            ErrorKind::AlreadyExists => ProblemKind::AlreadyExists,
            ErrorKind::LimitReached => ProblemKind::LimitReached,
            ErrorKind::SoldOut => ProblemKind::SoldOut,
            ErrorKind::NotOwner => ProblemKind::NotOwner,
            ErrorKind::Locked => ProblemKind::Locked,
            ErrorKind::BadLockToken => ProblemKind::BadLockToken,
            ErrorKind::Exhausted => ProblemKind::Exhausted,
            ErrorKind::Void => ProblemKind::Void,
            ErrorKind::NotYetValid => ProblemKind::NotYetValid,
            ErrorKind::Expired => ProblemKind::Expired,
            ErrorKind::Conflict => ProblemKind::Conflict,
            _ => ProblemKind::Backend,
        }
    }

    /// The snake_case name, e.g. `"rate_limited"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::InvalidInput => "invalid_input",
            ProblemKind::InvalidPattern => "invalid_pattern",
            ProblemKind::Infeasible => "infeasible",
            ProblemKind::NotFound => "not_found",
            ProblemKind::AlreadyExists => "already_exists",
            ProblemKind::LimitReached => "limit_reached",
            ProblemKind::SoldOut => "sold_out",
            ProblemKind::NotOwner => "not_owner",
            ProblemKind::Locked => "locked",
            ProblemKind::BadLockToken => "bad_lock_token",
            ProblemKind::Exhausted => "exhausted",
            ProblemKind::Void => "void",
            ProblemKind::NotYetValid => "not_yet_valid",
            ProblemKind::Expired => "expired",
            ProblemKind::Conflict => "conflict",
            ProblemKind::Backend => "backend",
            ProblemKind::Unauthorized => "unauthorized",
            ProblemKind::Forbidden => "forbidden",
            ProblemKind::MethodNotAllowed => "method_not_allowed",
            ProblemKind::PayloadTooLarge => "payload_too_large",
            ProblemKind::RateLimited => "rate_limited",
            ProblemKind::Timeout => "timeout",
            ProblemKind::Unavailable => "unavailable",
        }
    }

    /// The one HTTP status of the kind.
    pub fn status(self) -> StatusCode {
        match self {
            ProblemKind::InvalidInput | ProblemKind::InvalidPattern => StatusCode::BAD_REQUEST,
            ProblemKind::Infeasible => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemKind::NotFound => StatusCode::NOT_FOUND,
            ProblemKind::AlreadyExists
            | ProblemKind::LimitReached
            | ProblemKind::SoldOut
            | ProblemKind::NotOwner
            | ProblemKind::Locked
            | ProblemKind::BadLockToken
            | ProblemKind::Exhausted
            | ProblemKind::Void
            | ProblemKind::NotYetValid
            | ProblemKind::Expired
            | ProblemKind::Conflict => StatusCode::CONFLICT,
            ProblemKind::Backend => StatusCode::INTERNAL_SERVER_ERROR,
            ProblemKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ProblemKind::Forbidden => StatusCode::FORBIDDEN,
            ProblemKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProblemKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProblemKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ProblemKind::Timeout | ProblemKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The body of every failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// What went wrong, machine-readable.
    pub kind: ProblemKind,
    /// What went wrong and what would be right, for people.
    pub message: String,
    /// Seconds to wait before trying again (`conflict`, `rate_limited`): the `Retry-After`
    /// header, not part of the body.
    #[serde(skip)]
    #[schema(ignore)]
    pub retry_after: Option<Duration>,
}

impl Problem {
    /// A problem of `kind` with a message.
    pub fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        Problem {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// An `invalid_input` problem.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Problem::new(ProblemKind::InvalidInput, message)
    }

    /// The `backend` problem: a fixed message, since the real one stays in the log.
    pub fn backend() -> Self {
        Problem::new(
            ProblemKind::Backend,
            "the server could not complete the request because its database failed; \
             the details are in the server's log",
        )
    }

    /// A `rate_limited` problem, to be retried after `wait`.
    pub fn rate_limited(wait: Duration) -> Self {
        Problem {
            retry_after: Some(wait),
            ..Problem::new(
                ProblemKind::RateLimited,
                "too many requests with this API key; wait for the time in Retry-After",
            )
        }
    }

    /// The `Retry-After` value in whole seconds, at least 1.
    fn retry_after_seconds(&self) -> Option<u64> {
        let wait = self.retry_after.or(match self.kind {
            ProblemKind::Conflict | ProblemKind::RateLimited => Some(Duration::from_secs(1)),
            _ => None,
        })?;
        let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Some(whole.max(1))
    }
}

impl From<Error> for Problem {
    /// The problem of a library error. A `backend` error is logged with its source and answered
    /// with a generic message, so no driver text or SQL reaches the client.
    fn from(error: Error) -> Self {
        let kind = ProblemKind::from_error_kind(error.kind());
        if kind == ProblemKind::Backend {
            tracing::error!(error = %chain(&error), "the store failed");
            return Problem::backend();
        }
        Problem::new(kind, error.message())
    }
}

/// The error and its sources, for the log.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        text.push_str(": ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        let retry_after = self.retry_after_seconds();
        let body = serde_json::json!({ "kind": self.kind, "message": self.message }).to_string();
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.kind == ProblemKind::Unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_library_kind_keeps_its_name() {
        for kind in ErrorKind::ALL {
            assert_eq!(ProblemKind::from_error_kind(kind).as_str(), kind.as_str());
        }
    }

    #[test]
    fn names_match_serde_and_statuses_match_the_spec() {
        for kind in ProblemKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap_or_default(),
                serde_json::Value::String(kind.as_str().into())
            );
        }
        for kind in ErrorKind::ALL {
            let status = ProblemKind::from_error_kind(kind).status().as_u16();
            let expected = match kind {
                ErrorKind::InvalidInput | ErrorKind::InvalidPattern => 400,
                ErrorKind::Infeasible => 422,
                ErrorKind::NotFound => 404,
                ErrorKind::Backend => 500,
                _ => 409,
            };
            assert_eq!(status, expected, "{kind}");
        }
    }

    #[test]
    fn backend_messages_stay_in_the_log() {
        let io = std::io::Error::other("relation \"codes\" does not exist");
        let problem = Problem::from(Error::backend("SELECT * FROM codes failed", io));
        assert_eq!(problem.kind, ProblemKind::Backend);
        assert!(!problem.message.contains("SELECT") && !problem.message.contains("codes"));
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        let problem = Problem::rate_limited(Duration::from_millis(1500));
        assert_eq!(problem.retry_after_seconds(), Some(2));
        let problem = Problem::rate_limited(Duration::from_millis(3));
        assert_eq!(problem.retry_after_seconds(), Some(1));
        let conflict = Problem::new(ProblemKind::Conflict, "busy");
        assert_eq!(conflict.retry_after_seconds(), Some(1));
        assert_eq!(Problem::backend().retry_after_seconds(), None);
    }
}
