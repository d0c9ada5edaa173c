//! Who is calling: the user comes from the verified token's claims, never from the request.
//!
//! In AWS the HTTP API's JWT authorizer verifies the bearer token (signature against the issuer's
//! JWKS, issuer, audience, expiry) before the function runs, and hands its claims to the function
//! in the payload v2 request context (`requestContext.authorizer.jwt.claims`). The local runner
//! verifies tokens the same way and passes the same claims the same way ([`with_claims`]).
//!
//! [`caller`] refuses a request without a `sub` claim (401): a function deployed without an
//! authorizer trusts nobody, rather than whatever the caller wrote in `?userId=` or the body.

use crate::submissions::UserId;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use lockstep_http::problem::ApiError;
use std::collections::HashMap;

/// The claim naming the user.
pub use lockstep_http::identity::{as_user, with_claims, SUBJECT_CLAIM};

/// The verified claims of the request's bearer token, as the JWT authorizer passed them; none
/// when the request did not come through one.
pub fn claims(request: &Request) -> Option<&HashMap<String, String>> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => {
            Some(&context.authorizer.as_ref()?.jwt.as_ref()?.claims)
        }
        _ => None,
    }
}

/// The calling user: the verified `sub` claim, as the issuer wrote it (`auth0|…`, an e-mail
/// address, a UUID: any [`UserId`]). 401 when there is none, or when it is empty, longer than
/// 255 bytes or holds a control character.
pub fn caller(request: &Request) -> Result<UserId, ApiError> {
    let Some(sub) = claims(request).and_then(|claims| claims.get(SUBJECT_CLAIM)) else {
        tracing::info!(
            path = "caller_unauthenticated",
            "refused: no verified subject claim"
        );
        return Err(ApiError::Unauthorized);
    };
    UserId::parse(SUBJECT_CLAIM, sub).map_err(|_| {
        tracing::warn!(
            path = "caller_subject_unusable",
            "refused: the verified subject is not a storable identifier"
        );
        ApiError::Unauthorized
    })
}

/// A `userId` the request still names (query string or body) must be the caller's: 403
/// otherwise. Absent is fine: the user is the caller.
pub fn same_user(caller: &UserId, named: Option<&str>) -> Result<(), ApiError> {
    match named {
        Some(named) if named != caller.as_str() => {
            tracing::info!(
                path = "caller_user_mismatch",
                "refused: userId names another user than the token's subject"
            );
            Err(ApiError::Forbidden(
                "userId must be the signed-in user (or be left out).".into(),
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_is_the_verified_subject_and_nothing_else() {
        let plain = Request::default();
        assert!(matches!(caller(&plain), Err(ApiError::Unauthorized)));
        let alice = as_user(Request::default(), "alice");
        assert_eq!(caller(&alice).unwrap().as_str(), "alice");
        // Any issuer's subject is the caller as written; one this service cannot store is
        // refused, not truncated or escaped.
        for sub in ["auth0|abc", "alice@example.com", "a/b#c"] {
            assert_eq!(
                caller(&as_user(Request::default(), sub)).unwrap().as_str(),
                sub
            );
        }
        for odd in ["", "a\nb", &"x".repeat(256)] {
            let odd = as_user(Request::default(), odd);
            assert!(matches!(caller(&odd), Err(ApiError::Unauthorized)));
        }
        // Claims without `sub` authenticate nobody.
        let no_sub = with_claims(
            Request::default(),
            HashMap::from([("email".to_owned(), "a@example.com".to_owned())]),
        );
        assert!(matches!(caller(&no_sub), Err(ApiError::Unauthorized)));
    }

    #[test]
    fn a_named_user_must_be_the_caller() {
        let alice = UserId::parse("sub", "alice").unwrap();
        assert!(same_user(&alice, None).is_ok());
        assert!(same_user(&alice, Some("alice")).is_ok());
        assert!(matches!(
            same_user(&alice, Some("bob")),
            Err(ApiError::Forbidden(_))
        ));
    }
}
