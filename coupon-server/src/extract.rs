//! Extractors that turn every bad request into a [`Problem`]: JSON bodies (with their
//! `Content-Type` and size checked), path parameters and query strings.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;

use crate::problem::{Problem, ProblemKind};

/// A JSON request body of type `T`.
///
/// Refused with `invalid_input` (400): a missing or non-JSON `Content-Type`, malformed JSON, a
/// wrong type, an unknown field (the body types deny them), nesting deeper than 128 levels.
/// Refused with `payload_too_large` (413): a body over the route's limit.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(Problem::invalid_input(
                "the request body must be JSON sent with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    ProblemKind::PayloadTooLarge,
                    "the request body is too large: JSON bodies may have up to 1 MiB, \
                     and those of POST /coupons/codes up to 64 MiB",
                )
            } else {
                Problem::invalid_input(format!("the request body could not be read: {rejection}"))
            }
        })?;
        // serde would also read a struct from an array of its fields: bodies are objects only.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Problem::invalid_input(
                "the request body must be a JSON object, such as {\"user_id\": \"...\"}",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Problem::invalid_input(format!("invalid JSON body: {e}")))
    }
}

/// Whether a `Content-Type` is JSON: `application/json` or `application/*+json`, any parameters.
fn is_json(value: Option<&axum::http::HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Path parameters of type `T`, percent-decoded; a value of the wrong type is `invalid_input`.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParams(value))
            .map_err(|e| {
                Problem::invalid_input(format!("invalid path parameter: {}", e.body_text()))
            })
    }
}

/// A query string of type `T`; a bad value or an unknown parameter is `invalid_input`.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryParams(value))
            .map_err(|e| Problem::invalid_input(format!("invalid query: {}", e.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_content_types() {
        let json = |v: &'static str| is_json(Some(&HeaderValue::from_static(v)));
        assert!(json("application/json"));
        assert!(json("Application/JSON; charset=utf-8"));
        assert!(json("application/merge-patch+json"));
        assert!(!json("text/plain"));
        assert!(!json("application/jsonx"));
        assert!(!is_json(None));
    }
}
