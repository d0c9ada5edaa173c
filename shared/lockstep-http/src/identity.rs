//! The caller a gate evaluates a flag defined by rules for (design rule 10): the verified
//! identity, as API Gateway's JWT authorizer passes it in the payload v2 request context
//! (`requestContext.authorizer.jwt.claims`; the local runner passes its own verification the
//! same way). The `sub` claim is the targeting key, and every claim is an attribute, as a string
//! (API Gateway passes claims as strings: an array claim arrives as `"[a b]"`). Never a context
//! the client chose: nothing is read from the request's headers, query or body.

use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequestContext,
};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use lockstep::targeted::Context;
use lockstep_targeting::TARGETING_KEY;
use serde_json::Value;
use std::collections::HashMap;

/// The claim naming the caller, the targeting key.
pub const SUBJECT_CLAIM: &str = "sub";

/// The verified caller of a request, from its extensions (where `lambda_http` keeps the request
/// context); the empty context when the request did not come through a JWT authorizer.
pub fn verified_context(extensions: &http::Extensions) -> Context {
    let claims = match extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .authorizer
            .as_ref()
            .and_then(|authorizer| authorizer.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    };
    let mut context = Context::new();
    let Some(claims) = claims else {
        return context;
    };
    let mut names: Vec<&String> = claims.keys().collect();
    names.sort();
    for name in names {
        context.insert(name.clone(), Value::String(claims[name].clone()));
    }
    if let Some(sub) = claims.get(SUBJECT_CLAIM) {
        context.insert(TARGETING_KEY.to_owned(), Value::String(sub.clone()));
    }
    context
}

/// `request` as the JWT authorizer hands it on: `claims` in the payload v2 request context
/// (the local runner, and tests, build requests this way).
pub fn with_claims(request: Request, claims: HashMap<String, String>) -> Request {
    let mut context = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.clone(),
        _ => ApiGatewayV2httpRequestContext::default(),
    };
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = claims;
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    context.authorizer = Some(authorizer);
    request.with_request_context(RequestContext::ApiGatewayV2(context))
}

/// [`with_claims`] with only a `sub` claim.
pub fn as_user(request: Request, sub: &str) -> Request {
    with_claims(
        request,
        HashMap::from([(SUBJECT_CLAIM.to_owned(), sub.to_owned())]),
    )
}
