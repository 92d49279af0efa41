//! API keys: `Authorization: Bearer KEY` checked against an in-memory cache of the active keys,
//! refreshed in the background, then the caller's role and rate limit.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use coupon_core::apikey::{hash_key, ApiKeyId, Role, StoredApiKey};

use crate::problem::{Problem, ProblemKind};
use crate::ratelimit::RateLimit;

/// Loads the active keys from the store (a blocking call).
pub(crate) type KeyLoader = dyn Fn() -> coupon_core::Result<Vec<StoredApiKey>> + Send + Sync;

/// Who called: the key that authenticated the request. Never holds the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's id.
    pub id: ApiKeyId,
    /// The key's name, if it has one.
    pub name: Option<String>,
    /// The key's role.
    pub role: Role,
}

impl Caller {
    /// How the request log names the key: its name, or `key-ID` for an unnamed key.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("key-{}", self.id),
        }
    }
}

/// The active keys by the hash of their secret, as last loaded.
type Keys = HashMap<String, Caller>;

/// The key cache, the rate limiter and the loader, shared by every request.
pub(crate) struct Auth {
    keys: RwLock<Option<Arc<Keys>>>,
    loader: Arc<KeyLoader>,
    limit: Option<RateLimit>,
}

impl Auth {
    /// An empty cache over `loader`; the first request (or refresh) fills it.
    pub(crate) fn new(loader: Arc<KeyLoader>, limit: Option<RateLimit>) -> Arc<Auth> {
        Arc::new(Auth {
            keys: RwLock::new(None),
            loader,
            limit,
        })
    }

    /// Reloads the keys. On failure the last good cache stays and the failure is logged.
    pub(crate) async fn refresh(&self) -> Result<Arc<Keys>, Problem> {
        let loader = self.loader.clone();
        let loaded = tokio::task::spawn_blocking(move || loader()).await;
        match loaded {
            Ok(Ok(stored)) => {
                let keys: Keys = stored
                    .into_iter()
                    .map(|k| {
                        let caller = Caller {
                            id: k.key.id,
                            name: k.key.name,
                            role: k.key.role,
                        };
                        (k.hash, caller)
                    })
                    .collect();
                let keys = Arc::new(keys);
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Some(keys.clone());
                Ok(keys)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot reload the API keys; keeping the last ones");
                self.current().ok_or_else(unavailable)
            }
            Err(e) => {
                tracing::error!(error = %e, "reloading the API keys panicked");
                self.current().ok_or_else(unavailable)
            }
        }
    }

    fn current(&self) -> Option<Arc<Keys>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The caller presenting the `Authorization` header of `headers`.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Problem> {
        let secret = bearer(headers)?;
        let keys = match self.current() {
            Some(keys) => keys,
            None => self.refresh().await?,
        };
        keys.get(&hash_key(secret)).cloned().ok_or_else(|| {
            Problem::new(
                ProblemKind::Unauthorized,
                "the API key is unknown or revoked; create one with `coupon apikey create`",
            )
        })
    }
}

fn unavailable() -> Problem {
    Problem::new(
        ProblemKind::Unavailable,
        "the API keys cannot be checked because the database does not answer; try again later",
    )
}

/// The secret of an `Authorization: Bearer SECRET` header.
fn bearer(headers: &HeaderMap) -> Result<&str, Problem> {
    let unauthorized = |message: &str| Problem::new(ProblemKind::Unauthorized, message);
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("an API key is required: send Authorization: Bearer KEY"))?;
    let value = value
        .to_str()
        .map_err(|_| unauthorized("the Authorization header must be Bearer KEY"))?;
    let (scheme, secret) = value
        .split_once(' ')
        .ok_or_else(|| unauthorized("the Authorization header must be Bearer KEY"))?;
    let secret = secret.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || secret.is_empty() {
        return Err(unauthorized("the Authorization header must be Bearer KEY"));
    }
    Ok(secret)
}

/// Keeps `auth`'s cache fresh: reloads it every `every` until the server drops it.
pub(crate) fn spawn_refresh(auth: &Arc<Auth>, every: Duration) {
    let weak: Weak<Auth> = Arc::downgrade(auth);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(auth) = weak.upgrade() else { break };
            // A failure is logged and the last good keys stay.
            let _ = auth.refresh().await;
            if let Some(limit) = &auth.limit {
                limit.forget_idle();
            }
        }
    });
}

/// What a route needs: the shared [`Auth`] and the lowest role that may call it.
#[derive(Clone)]
pub(crate) struct Gate {
    pub(crate) auth: Arc<Auth>,
    pub(crate) role: Role,
}

/// The middleware of every protected route: 401 without a valid key, 403 for a client key on an
/// admin route, 429 over the key's rate limit. The caller is put in the request's extensions, and
/// in the response's for the request log.
pub(crate) async fn require(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let caller = match gate.auth.authenticate(req.headers()).await {
        Ok(caller) => caller,
        Err(problem) => return problem.into_response(),
    };
    let refused = if gate.role == Role::Admin && caller.role != Role::Admin {
        Some(Problem::new(
            ProblemKind::Forbidden,
            format!(
                "this endpoint needs an admin key; the key {} is a {} key",
                caller.label(),
                caller.role
            ),
        ))
    } else {
        gate.auth
            .limit
            .as_ref()
            .and_then(|limit| limit.check(caller.id).err())
            .map(Problem::rate_limited)
    };
    let mut response = match refused {
        Some(problem) => problem.into_response(),
        None => {
            req.extensions_mut().insert(caller.clone());
            next.run(req).await
        }
    };
    response.extensions_mut().insert(caller);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn bearer_header_forms() {
        assert_eq!(bearer(&headers("Bearer cpn_x")).ok(), Some("cpn_x"));
        assert_eq!(bearer(&headers("bearer  cpn_x ")).ok(), Some("cpn_x"));
        for bad in ["Basic abc", "Bearer", "Bearer ", "cpn_x"] {
            assert_eq!(
                bearer(&headers(bad)).err().map(|p| p.kind),
                Some(ProblemKind::Unauthorized),
                "{bad}"
            );
        }
        assert!(bearer(&HeaderMap::new()).is_err());
    }

    #[test]
    fn labels_never_show_secrets() {
        let named = Caller {
            id: 3,
            name: Some("checkout".into()),
            role: Role::Client,
        };
        assert_eq!(named.label(), "checkout");
        let unnamed = Caller {
            name: None,
            ..named
        };
        assert_eq!(unnamed.label(), "key-3");
    }
}
