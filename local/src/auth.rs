//! The runner's stand-in for the HTTP API's JWT authorizer, and a local issuer to sign in with.
//!
//! - **Verifying** ([`LocalAuth::authorize`]), as API Gateway's JWT authorizer does before a
//!   feature-x function runs: `Authorization: Bearer <JWT>`, RS256 only, the key named by the
//!   token's `kid` in the issuer's JWKS, then the claims API Gateway documents for HTTP API JWT
//!   authorizers: `iss` is the issuer; `aud` is an audience (or, only when there is no `aud`,
//!   `client_id` is, as in Cognito's access tokens); `exp` is after now; `nbf` and `iat`, when
//!   present, are not after now. No leeway. (`sub` is not the authorizer's to require: a token
//!   without one reaches the function, which refuses it.) A refused request answers 401
//!   `{"message":"Unauthorized"}` with `WWW-Authenticate`, as API Gateway does, and never
//!   reaches the function. An accepted one reaches it with the token's claims
//!   in `requestContext.authorizer.jwt.claims`, each as a string, as API Gateway passes them.
//! - **Issuing** (development only): an RSA key pair generated at start (AWS-LC, through
//!   `aws-lc-rs`), its JWKS at `GET /local/auth/jwks.json`, and `POST /local/auth/sign-in`
//!   `{"user": "<name>"}`, which signs a one-hour token whose `sub` is that name. Signing and
//!   verification are `jsonwebtoken`'s; nothing here is hand-written cryptography.
//!
//! Tokens are never logged.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The local issuer's `iss`.
pub const LOCAL_ISSUER: &str = "urn:lockstep:local-issuer";
/// The audience the runner's authorizer accepts (the SPA's client id, in Cognito's terms).
pub const LOCAL_AUDIENCE: &str = "lockstep-local-spa";
/// How long a dev sign-in token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Why a request was refused (logged as the decision's path; the client is told only 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a JWT, an unknown `kid`, a wrong algorithm or a bad signature.
    Invalid,
    /// Expired.
    Expired,
    /// Not valid yet: `nbf` or `iat` after now.
    NotYetValid,
    /// Another issuer or audience.
    WrongIssuerOrAudience,
}

impl Refusal {
    fn path(self) -> &'static str {
        match self {
            Refusal::Missing => "auth_missing",
            Refusal::Invalid => "auth_invalid",
            Refusal::Expired => "auth_expired",
            Refusal::NotYetValid => "auth_not_yet_valid",
            Refusal::WrongIssuerOrAudience => "auth_wrong_issuer_or_audience",
        }
    }
}

/// The claims the local issuer signs.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
    token_use: String,
    username: String,
}

/// The local issuer and authorizer.
pub struct LocalAuth {
    kid: String,
    signing: EncodingKey,
    jwks: JwkSet,
    /// The JWKS's keys, by `kid`, made once from it.
    verifying: Vec<(String, DecodingKey)>,
    validation: Validation,
}

impl LocalAuth {
    /// A fresh RSA-2048 key pair; its JWKS is what [`authorize`](Self::authorize) trusts.
    pub fn generate() -> Result<Self, String> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| format!("RSA key: {e}"))?;
        let pkcs8 = pair.as_der().map_err(|e| format!("RSA key DER: {e}"))?;
        let pem = pem_wrap("PRIVATE KEY", pkcs8.as_ref());
        let signing =
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("signing key: {e}"))?;
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        // The key id: a digest of the public key would do; any unique name works for a JWKS.
        let kid = format!("local-{}", &n[..16]);
        let jwks: JwkSet = serde_json::from_value(serde_json::json!({
            "keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}]
        }))
        .map_err(|e| format!("JWKS: {e}"))?;
        let verifying = jwks
            .keys
            .iter()
            .map(|jwk| {
                let kid = jwk.common.key_id.clone().unwrap_or_default();
                DecodingKey::from_jwk(jwk).map(|key| (kid, key))
            })
            .collect::<Result<_, _>>()
            .map_err(|e| format!("JWKS key: {e}"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[LOCAL_ISSUER]);
        // `aud`, or `client_id` without one, is checked after decoding ([`audience_matches`]):
        // jsonwebtoken knows `aud` only.
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.leeway = 0;
        Ok(Self {
            kid,
            signing,
            jwks,
            verifying,
            validation,
        })
    }

    /// The public keys, as `GET /local/auth/jwks.json` serves them.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// A token for `sub`, valid from `issued_at` to `expires_at` (seconds since the epoch).
    pub fn issue_between(&self, sub: &str, issued_at: u64, expires_at: u64) -> String {
        let claims = Claims {
            iss: LOCAL_ISSUER.into(),
            sub: sub.into(),
            aud: LOCAL_AUDIENCE.into(),
            iat: issued_at,
            exp: expires_at,
            token_use: "id".into(),
            username: sub.into(),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.signing)
            .expect("an RSA key of ours signs any claims")
    }

    /// A token for `sub`, valid for [`TOKEN_LIFETIME`] from now.
    pub fn issue(&self, sub: &str) -> String {
        let now = unix_now();
        self.issue_between(sub, now, now + TOKEN_LIFETIME.as_secs())
    }

    /// The verified claims of the request's bearer token, as strings (API Gateway's form), or
    /// why it is refused.
    pub fn authorize(&self, headers: &http::HeaderMap) -> Result<HashMap<String, String>, Refusal> {
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Invalid)?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.iter().find(|(k, _)| k == kid))
            .map(|(_, key)| key)
            .ok_or(Refusal::Invalid)?;
        let data =
            jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, key, &self.validation)
                .map_err(|e| {
                    use jsonwebtoken::errors::ErrorKind;
                    match e.kind() {
                        ErrorKind::ExpiredSignature => Refusal::Expired,
                        ErrorKind::ImmatureSignature => Refusal::NotYetValid,
                        ErrorKind::InvalidIssuer => Refusal::WrongIssuerOrAudience,
                        _ => Refusal::Invalid,
                    }
                })?;
        if !audience_matches(&data.claims, LOCAL_AUDIENCE) {
            return Err(Refusal::WrongIssuerOrAudience);
        }
        issued_by_now(&data.claims, unix_now())?;
        Ok(data
            .claims
            .into_iter()
            .map(|(name, value)| (name, claim_string(value)))
            .collect())
    }

    /// Logs the refusal's path and answers as API Gateway's JWT authorizer does.
    pub fn refuse<B: From<String>>(refusal: Refusal) -> Response<B> {
        tracing::info!(
            status = 401,
            path = refusal.path(),
            "request refused by the authorizer"
        );
        let challenge = match refusal {
            Refusal::Missing => "Bearer",
            _ => "Bearer error=\"invalid_token\"",
        };
        Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(CONTENT_TYPE, "application/json")
            .header(CACHE_CONTROL, "no-store")
            .header(WWW_AUTHENTICATE, HeaderValue::from_static(challenge))
            .body(B::from(r#"{"message":"Unauthorized"}"#.to_owned()))
            .expect("static headers are valid")
    }
}

/// `POST /local/auth/sign-in`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The user name, which becomes `sub`.
    pub user: String,
}

/// Its answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedIn {
    /// The bearer token.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds it is valid.
    pub expires_in: u64,
    /// The user (`sub`).
    pub user: String,
}

/// API Gateway's audience rule: `aud` (a string, or an array with at least one match) names
/// `audience`; only a token without `aud` may name it in `client_id` instead.
fn audience_matches(claims: &serde_json::Map<String, Value>, audience: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
        Some(_) => false,
        None => claims.get("client_id").and_then(Value::as_str) == Some(audience),
    }
}

/// `iat`, when present, must not be after `now` (API Gateway refuses a token issued in the
/// future; jsonwebtoken does not look at `iat`). A non-numeric `iat` is not a valid token.
fn issued_by_now(claims: &serde_json::Map<String, Value>, now: u64) -> Result<(), Refusal> {
    match claims.get("iat") {
        None => Ok(()),
        Some(iat) => match iat.as_f64() {
            // Seconds, possibly fractional: a token issued within the current second is valid.
            Some(iat) if iat.floor() <= now as f64 => Ok(()),
            Some(_) => Err(Refusal::NotYetValid),
            None => Err(Refusal::Invalid),
        },
    }
}

/// A claim as API Gateway hands it to a function: strings as they are, other JSON as text
/// (arrays as `[a b]`).
fn claim_string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Array(items) => format!(
            "[{}]",
            items
                .into_iter()
                .map(claim_string)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

fn pem_wrap(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds since the epoch now (the authorizer checks `exp` against the system clock).
pub fn now_seconds() -> u64 {
    unix_now()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers
    }

    #[test]
    fn a_token_it_issued_verifies_with_its_claims_as_strings() {
        let auth = LocalAuth::generate().unwrap();
        let claims = auth.authorize(&bearer(&auth.issue("alice"))).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["iss"], LOCAL_ISSUER);
        assert_eq!(claims["aud"], LOCAL_AUDIENCE);
        assert!(claims["exp"].parse::<u64>().unwrap() > now_seconds());
    }

    #[test]
    fn missing_expired_foreign_and_tampered_tokens_are_refused() {
        let auth = LocalAuth::generate().unwrap();
        let other = LocalAuth::generate().unwrap();
        assert_eq!(
            auth.authorize(&http::HeaderMap::new()),
            Err(Refusal::Missing)
        );
        let now = now_seconds();
        let expired = auth.issue_between("alice", now - 7200, now - 3600);
        assert_eq!(auth.authorize(&bearer(&expired)), Err(Refusal::Expired));
        // Another key pair's token: its kid is not in this JWKS.
        assert_eq!(
            auth.authorize(&bearer(&other.issue("alice"))),
            Err(Refusal::Invalid)
        );
        // Signed by another key under this issuer's kid: the signature fails.
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(auth.kid.clone());
        let claims = Claims {
            iss: LOCAL_ISSUER.into(),
            sub: "mallory".into(),
            aud: LOCAL_AUDIENCE.into(),
            iat: now,
            exp: now + 60,
            token_use: "id".into(),
            username: "mallory".into(),
        };
        let forged = jsonwebtoken::encode(&header, &claims, &other.signing).unwrap();
        assert_eq!(auth.authorize(&bearer(&forged)), Err(Refusal::Invalid));
        // A payload changed after signing.
        let good = auth.issue("alice");
        let parts: Vec<&str> = good.split('.').collect();
        let payload = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
        let changed = String::from_utf8(payload)
            .unwrap()
            .replace("\"alice\"", "\"bobby\"");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(changed),
            parts[2]
        );
        assert_eq!(auth.authorize(&bearer(&tampered)), Err(Refusal::Invalid));
        // `alg: none` and HS256 (keyed with anything) are refused: RS256 only.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, auth.kid)),
            parts[1]
        );
        assert_eq!(auth.authorize(&bearer(&none)), Err(Refusal::Invalid));
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some(auth.kid.clone());
        let hs256 =
            jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(b"guess").unwrap())
                .unwrap();
        assert_eq!(auth.authorize(&bearer(&hs256)), Err(Refusal::Invalid));
        assert_eq!(auth.authorize(&bearer("not-a-jwt")), Err(Refusal::Invalid));
    }

    #[test]
    fn another_audience_or_issuer_is_refused() {
        let auth = LocalAuth::generate().unwrap();
        let now = now_seconds();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(auth.kid.clone());
        for (iss, aud) in [
            (LOCAL_ISSUER, "someone-else"),
            ("https://evil", LOCAL_AUDIENCE),
        ] {
            let claims = Claims {
                iss: iss.into(),
                sub: "alice".into(),
                aud: aud.into(),
                iat: now,
                exp: now + 60,
                token_use: "id".into(),
                username: "alice".into(),
            };
            let token = jsonwebtoken::encode(&header, &claims, &auth.signing).unwrap();
            assert_eq!(
                auth.authorize(&bearer(&token)),
                Err(Refusal::WrongIssuerOrAudience)
            );
        }
    }

    /// `claims` signed with this issuer's key, under its `kid`.
    fn signed(auth: &LocalAuth, claims: Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(auth.kid.clone());
        jsonwebtoken::encode(&header, &claims, &auth.signing).unwrap()
    }

    #[test]
    fn a_token_not_valid_yet_by_nbf_or_iat_is_refused_as_api_gateway_refuses_it() {
        let auth = LocalAuth::generate().unwrap();
        let now = now_seconds();
        let token = |extra: Value| {
            let mut claims = serde_json::json!({
                "iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "sub": "alice", "exp": now + 3600,
            });
            claims
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            bearer(&signed(&auth, claims))
        };
        // API Gateway: "nbf – Must be before the current time", "iat – Must be before the
        // current time"; no leeway documented, none given.
        for future in [
            serde_json::json!({"nbf": now + 60}),
            serde_json::json!({"iat": now + 60}),
            // A minute ahead, not a second: minting and checking may straddle a second boundary
            // on a loaded machine (it flaked with `now + 1`).
            serde_json::json!({"nbf": now - 60, "iat": now + 60}),
        ] {
            assert_eq!(
                auth.authorize(&token(future.clone())),
                Err(Refusal::NotYetValid),
                "{future}"
            );
        }
        assert_eq!(
            auth.authorize(&token(serde_json::json!({"iat": "yesterday"}))),
            Err(Refusal::Invalid)
        );
        // Valid from now or earlier, or without either claim: accepted.
        for fine in [
            serde_json::json!({"nbf": now, "iat": now}),
            serde_json::json!({"nbf": now - 60, "iat": now - 60}),
            serde_json::json!({}),
        ] {
            assert!(auth.authorize(&token(fine.clone())).is_ok(), "{fine}");
        }
    }

    #[test]
    fn the_audience_is_aud_or_only_without_aud_client_id() {
        let auth = LocalAuth::generate().unwrap();
        let now = now_seconds();
        let token = |audience: Value| {
            let mut claims = serde_json::json!({"iss": LOCAL_ISSUER, "exp": now + 60});
            claims
                .as_object_mut()
                .unwrap()
                .extend(audience.as_object().unwrap().clone());
            bearer(&signed(&auth, claims))
        };
        // Cognito's access tokens carry `client_id` and no `aud`.
        for accepted in [
            serde_json::json!({"aud": LOCAL_AUDIENCE}),
            serde_json::json!({"aud": ["other", LOCAL_AUDIENCE]}),
            serde_json::json!({"client_id": LOCAL_AUDIENCE}),
        ] {
            assert!(
                auth.authorize(&token(accepted.clone())).is_ok(),
                "{accepted}"
            );
        }
        // With `aud` present, `client_id` is not looked at.
        for refused in [
            serde_json::json!({}),
            serde_json::json!({"client_id": "other"}),
            serde_json::json!({"aud": "other", "client_id": LOCAL_AUDIENCE}),
            serde_json::json!({"aud": []}),
            serde_json::json!({"aud": 7}),
        ] {
            assert_eq!(
                auth.authorize(&token(refused.clone())),
                Err(Refusal::WrongIssuerOrAudience),
                "{refused}"
            );
        }
    }

    #[test]
    fn a_token_without_sub_passes_the_authorizer_for_the_function_to_refuse() {
        let auth = LocalAuth::generate().unwrap();
        let now = now_seconds();
        let token = signed(
            &auth,
            serde_json::json!({"iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "exp": now + 60}),
        );
        let claims = auth.authorize(&bearer(&token)).unwrap();
        assert!(!claims.contains_key("sub"));
    }

    #[test]
    fn claims_reach_the_function_as_api_gateway_writes_them() {
        assert_eq!(claim_string(serde_json::json!("x")), "x");
        assert_eq!(claim_string(serde_json::json!(12)), "12");
        assert_eq!(claim_string(serde_json::json!(["a", "b"])), "[a b]");
    }
}
