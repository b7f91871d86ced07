//! Bearer-token authentication of writes (`POST`/`PUT`/`PATCH`/`DELETE`); reads are open.
//!
//! The token is compared in constant time (`subtle`), on SHA-256 digests so that not even its
//! length leaks. It never appears in logs, errors or `Debug` output.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{ApiError, Reason};

/// How writes are authorised.
#[derive(Clone)]
pub enum WriteAuth {
    /// Writes need `Authorization: Bearer <token>`; holds the token's SHA-256 digest.
    Token(Arc<[u8; 32]>),
    /// No token is configured: every write is refused with a message saying how to set one.
    Unconfigured,
    /// Every write is allowed (`--insecure-no-auth`).
    Disabled,
}

impl std::fmt::Debug for WriteAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WriteAuth::Token(_) => "WriteAuth::Token(<redacted>)",
            WriteAuth::Unconfigured => "WriteAuth::Unconfigured",
            WriteAuth::Disabled => "WriteAuth::Disabled",
        })
    }
}

impl WriteAuth {
    /// Writes need `token` (surrounding whitespace is ignored); an empty token means
    /// [`WriteAuth::Unconfigured`].
    pub fn token(token: &str) -> Self {
        let token = token.trim();
        if token.is_empty() {
            WriteAuth::Unconfigured
        } else {
            WriteAuth::Token(Arc::new(Sha256::digest(token.as_bytes()).into()))
        }
    }

    /// Checks the `Authorization` header of a write.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let expected = match self {
            WriteAuth::Disabled => return Ok(()),
            WriteAuth::Unconfigured => {
                return Err(ApiError::new(
                    Reason::Unauthorized,
                    "writes are disabled because no API token is configured: put a token in \
                     the file given by --token-file (default <state-dir>/api-token) and restart, \
                     or start with --insecure-no-auth",
                ));
            }
            WriteAuth::Token(digest) => digest,
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            });
        let Some(given) = given else {
            return Err(ApiError::new(
                Reason::Unauthorized,
                "writes need an Authorization: Bearer <token> header (the token is in the \
                 server's --token-file)",
            ));
        };
        let given_digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        if bool::from(given_digest.ct_eq(expected.as_ref())) {
            Ok(())
        } else {
            Err(ApiError::new(
                Reason::Unauthorized,
                "the bearer token is not valid",
            ))
        }
    }
}

/// Middleware: lets reads through, checks writes against `auth`.
pub async fn require_token_for_writes(
    State(auth): State<WriteAuth>,
    request: Request,
    next: Next,
) -> Response {
    let read = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !read {
        if let Err(e) = auth.check(request.headers()) {
            return e.into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn only_the_configured_token_authorises_writes() {
        let auth = WriteAuth::token(" s3cret\n");
        assert!(auth.check(&bearer("Bearer s3cret")).is_ok());
        assert!(auth.check(&bearer("bearer  s3cret ")).is_ok());
        assert!(auth.check(&bearer("Bearer s3cre")).is_err());
        assert!(auth.check(&bearer("Basic s3cret")).is_err());
        assert!(auth.check(&HeaderMap::new()).is_err());
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn without_a_token_writes_are_refused_unless_auth_is_disabled() {
        let e = WriteAuth::token("  ")
            .check(&bearer("Bearer x"))
            .unwrap_err();
        assert_eq!(e.reason, Reason::Unauthorized);
        assert!(e.message.contains("--token-file"));
        assert!(WriteAuth::Disabled.check(&HeaderMap::new()).is_ok());
    }
}
