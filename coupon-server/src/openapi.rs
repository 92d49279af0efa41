//! The OpenAPI 3.1 document, generated from the handlers and the library's types.
//!
//! Each handler declares its success and the failures particular to it; [`CommonResponses`]
//! adds those every operation of a kind can give, from one table, so that no operation forgets
//! one: 400 to every operation with parameters or a body, 413 to those with a body, 401, 429
//! and 503 to protected ones, 403 to admin ones, 409 (`conflict`), 500 and 503 to every one that
//! reaches the database.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use crate::problem::{Problem, ProblemKind};
use crate::routes;

/// The document's description, shown first by viewers.
const DESCRIPTION: &str = "\
Coupon books over HTTP: create books and add codes (admin keys); assign, lock, unlock and \
redeem codes and read books and a user's coupons (client keys; admin keys may too).

Send `Authorization: Bearer KEY` (keys come from `coupon apikey create --role admin|client`). \
Every failure answers `{\"kind\", \"message\"}` with one status per kind: 400 `invalid_input`, \
`invalid_pattern`; 401 `unauthorized`; 403 `forbidden`; 404 `not_found`; 405 \
`method_not_allowed`; 409 the rule refusals and `conflict` (with Retry-After); 413 \
`payload_too_large`; 422 `infeasible`; 429 `rate_limited` (with Retry-After); 500 `backend`; \
503 `timeout`, `unavailable`.";

/// The generated document (see [`document`](crate::openapi::document)).
#[derive(OpenApi)]
#[openapi(
    info(title = "coupon", description = DESCRIPTION),
    paths(
        routes::create_book,
        routes::show_book,
        routes::update_book,
        routes::import_codes,
        routes::generate_codes,
        routes::assign_random,
        routes::assign_code,
        routes::lock_code,
        routes::unlock_code,
        routes::redeem_code,
        routes::void_code,
        routes::user_coupons,
        routes::events,
        routes::health,
        routes::openapi,
    ),
    components(schemas(Problem, ProblemKind)),
    tags(
        (name = "admin", description = "Needs an admin key"),
        (name = "client", description = "Needs a client or an admin key"),
        (name = "open", description = "Needs no key"),
    ),
    modifiers(&CommonResponses),
)]
pub struct ApiDoc;

/// The OpenAPI document of the server, as JSON.
pub fn document() -> Document {
    ApiDoc::openapi()
}

/// Adds the bearer scheme and the responses shared by operations of a kind.
struct CommonResponses;

/// A header a shared response carries: its name and description.
type SharedHeader = Option<(&'static str, &'static str)>;

/// Shared responses: status, component name, description, and the header it carries.
const SHARED: &[(&str, &str, &str, SharedHeader)] = &[
    (
        "400",
        "BadRequest",
        "`invalid_input` or `invalid_pattern`: a bad field, path or query parameter, malformed \
         JSON, a wrong type, an unknown field, a missing or wrong Content-Type",
        None,
    ),
    (
        "401",
        "Unauthorized",
        "`unauthorized`: no API key, or an unknown or revoked one",
        Some(("WWW-Authenticate", "Always `Bearer`")),
    ),
    (
        "403",
        "Forbidden",
        "`forbidden`: this endpoint needs an admin key",
        None,
    ),
    (
        "409",
        "Conflict",
        "`conflict`: transient contention the server already retried; try again after \
         Retry-After",
        Some(("Retry-After", "Seconds to wait")),
    ),
    (
        "413",
        "PayloadTooLarge",
        "`payload_too_large`: the body is over 1 MiB (64 MiB for POST /coupons/codes)",
        None,
    ),
    (
        "429",
        "RateLimited",
        "`rate_limited`: the key is over its rate limit",
        Some(("Retry-After", "Seconds to wait, at least 1")),
    ),
    (
        "500",
        "Backend",
        "`backend`: the database failed; the details are only in the server's log",
        None,
    ),
    (
        "503",
        "Unavailable",
        "`timeout`: no answer within the request timeout (the request may still complete); \
         `unavailable`: the database does not answer",
        None,
    ),
];

fn shared_response(description: &str, header: Option<(&str, &str)>) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("Problem"))),
    );
    if let Some((name, text)) = header {
        let schema = match name {
            "Retry-After" => ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
            _ => ObjectBuilder::new().schema_type(Type::String),
        };
        response = response.header(
            name,
            HeaderBuilder::new()
                .schema(schema)
                .description(Some(text))
                .build(),
        );
    }
    response.build()
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from `coupon apikey create`"))
                    .build(),
            ),
        );
        for (_, name, description, header) in SHARED {
            components.responses.insert(
                (*name).to_owned(),
                RefOr::T(shared_response(description, *header)),
            );
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                add_shared(path, operation);
            }
        }
    }
}

/// Adds to `operation` the shared responses that apply to it, keeping its own.
fn add_shared(path: &str, operation: &mut Operation) {
    let tags = operation.tags.clone().unwrap_or_default();
    let open = tags.iter().any(|t| t == "open");
    let admin = tags.iter().any(|t| t == "admin");
    let has_params = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = operation.request_body.is_some();
    let applies = |status: &str| match status {
        "400" => has_params || has_body,
        "401" | "429" => !open,
        "403" => admin,
        "409" | "500" => path != "/openapi.json" && path != "/health",
        "413" => has_body,
        "503" => path != "/openapi.json",
        _ => false,
    };
    for (status, name, ..) in SHARED {
        if applies(status) {
            operation
                .responses
                .responses
                .entry((*status).to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_openapi_3_1_with_every_path() {
        let doc = serde_json::to_value(document()).unwrap_or_default();
        assert!(doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.1"));
        let paths = doc["paths"].as_object().map(|p| p.len()).unwrap_or(0);
        assert_eq!(paths, 14, "{}", doc["paths"]);
        assert_eq!(
            doc["paths"]["/health"]["get"]["security"],
            serde_json::Value::Null
        );
        assert!(doc["paths"]["/coupons"]["post"]["responses"]["403"].is_object());
        assert!(doc["paths"]["/coupons/assign"]["post"]["responses"]["403"].is_null());
    }
}
