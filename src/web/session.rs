//! Operator sign-in for the dashboard: the API token, checked like an API write, exchanged for
//! an `HttpOnly; SameSite=Strict` session cookie that holds no secret (an expiry and an HMAC of
//! it keyed by the token's digest, so changing the token signs everyone out, and a restart
//! does not). Forms carry a CSRF token derived from the session cookie.

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::http::WriteAuth;

/// The session cookie's name.
pub const COOKIE: &str = "ccci_session";
/// How long a session lasts, in seconds (12 hours).
pub const LIFETIME: i64 = 12 * 3600;

/// The key sessions are signed with, from the server's write authorisation.
#[derive(Clone)]
pub struct Sessions {
    key: Option<[u8; 32]>,
    auth: WriteAuth,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions(<redacted>)")
    }
}

/// A signed-in operator's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    cookie: String,
}

impl Sessions {
    /// Sessions for a server authorising writes with `auth`: keyed by the token's digest; with
    /// auth disabled, by a key made now (any token signs in); unconfigured, nobody signs in.
    pub fn new(auth: &WriteAuth) -> Sessions {
        let key = match auth {
            WriteAuth::Token(digest) => Some(**digest),
            WriteAuth::Disabled => Some(rand::random()),
            WriteAuth::Unconfigured => None,
        };
        Sessions {
            key,
            auth: auth.clone(),
        }
    }

    fn mac(&self, purpose: &str, value: &str) -> Option<String> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.as_ref()?).ok()?;
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// Checks `token` like an API write would; on success, the `Set-Cookie` value of a new
    /// session starting at `now` (unix seconds).
    pub fn sign_in(&self, token: &str, now: i64) -> Option<HeaderValue> {
        let mut headers = HeaderMap::new();
        let bearer = HeaderValue::from_str(&format!("Bearer {}", token.trim())).ok()?;
        headers.insert(header::AUTHORIZATION, bearer);
        self.auth.check(&headers).ok()?;
        let expiry = (now + LIFETIME).to_string();
        let value = format!("{expiry}.{}", self.mac("session", &expiry)?);
        HeaderValue::from_str(&format!(
            "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={LIFETIME}"
        ))
        .ok()
    }

    /// The `Set-Cookie` value that ends a session.
    pub fn sign_out() -> HeaderValue {
        HeaderValue::from_static("ccci_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }

    /// The valid, unexpired session in the request's cookies, if any.
    pub fn session(&self, headers: &HeaderMap, now: i64) -> Option<Session> {
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .map(|(_, v)| v.to_string())?;
        let (expiry, mac) = cookie.split_once('.')?;
        let expected = self.mac("session", expiry)?;
        let same: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), mac.as_bytes()).into();
        (same && expiry.parse::<i64>().ok()? > now).then_some(Session { cookie })
    }

    /// The CSRF token forms of `session` carry.
    pub fn csrf(&self, session: &Session) -> String {
        self.mac("csrf", &session.cookie).unwrap_or_default()
    }

    /// Whether `token` is `session`'s CSRF token.
    pub fn csrf_ok(&self, session: &Session, token: &str) -> bool {
        let expected = self.csrf(session);
        !expected.is_empty()
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                expected.as_bytes(),
                token.as_bytes(),
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie_header(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("other=1; {pair}").parse().unwrap());
        h
    }

    #[test]
    fn the_token_signs_in_and_the_cookie_holds_no_secret() {
        let s = Sessions::new(&WriteAuth::token("s3cret-token"));
        assert!(s.sign_in("wrong", 100).is_none());
        let set = s.sign_in("s3cret-token\n", 100).unwrap();
        let text = set.to_str().unwrap();
        assert!(
            text.contains("HttpOnly") && text.contains("SameSite=Strict"),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
        let session = s.session(&cookie_header(&set), 200).unwrap();
        assert!(
            s.session(&cookie_header(&set), 100 + LIFETIME).is_none(),
            "expired"
        );
        let csrf = s.csrf(&session);
        assert!(s.csrf_ok(&session, &csrf));
        assert!(!s.csrf_ok(&session, "") && !s.csrf_ok(&session, &csrf[1..]));
        // Another token's sessions are not valid here, and forged cookies are refused.
        let other = Sessions::new(&WriteAuth::token("another"));
        assert!(other.session(&cookie_header(&set), 200).is_none());
        let mut forged = HeaderMap::new();
        forged.insert(
            header::COOKIE,
            "ccci_session=99999999999.00".parse().unwrap(),
        );
        assert!(s.session(&forged, 200).is_none());
        assert!(s.session(&HeaderMap::new(), 200).is_none());
    }

    #[test]
    fn without_a_configured_token_nobody_signs_in() {
        let s = Sessions::new(&WriteAuth::token(""));
        assert!(s.sign_in("", 1).is_none());
        assert!(s.sign_in("anything", 1).is_none());
        let open = Sessions::new(&WriteAuth::Disabled);
        assert!(open.sign_in("anything", 1).is_some());
    }
}
