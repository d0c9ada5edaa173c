//! The gate (design rules 4, 8 and 9): a [`tower_layer::Layer`] a user puts in front of their own
//! routes. It decides with [`FlagCache::decide`] and the request's journey token (the
//! `Lockstep-Journey` header, [`lockstep::journey`]): an instance behind the token catches up
//! before deciding; a flag switched off with a drain time lets journeys whose signed token was
//! issued under the enabled value finish. While closed it answers 503 with `Retry-After` (P, or
//! the wait until a behind instance may poll) and an `application/problem+json` body naming the
//! flag and the reason, before the route sees the request, so nothing is read or written. While
//! open it passes the request on, with the [`FlagView`] it decided with in the request's
//! extensions ([`Decided`]), so the route's other flag decisions use the same read.
//!
//! It works with any `http::Request<B>` service whose response body can be made from a `String`:
//! `lambda_http` (`lambda_http::run(layer.layer(service_fn(handler)))`) and axum
//! (`Router::layer`, `route_layer`) alike.
//!
//! ```no_run
//! use lambda_http::{service_fn, Body, Error, Request, Response};
//! use lockstep_http::GateLayer;
//! use tower_layer::Layer;
//!
//! async fn submit(_request: Request) -> Result<Response<Body>, Error> {
//!     Ok(Response::new(Body::from("stored")))
//! }
//!
//! # async fn demo(cache: std::sync::Arc<lockstep::FlagCache>) -> Result<(), Error> {
//! let gate = GateLayer::new(cache, "isFeatureXEnabled")?;
//! lambda_http::run(gate.layer(service_fn(submit))).await
//! # }
//! ```

use crate::identity;
use crate::problem::ApiError;
use http::{HeaderMap, Request, Response};
use lockstep::{journey, FlagCache, FlagHandle, FlagView, Verdict};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use thiserror::Error;
use tower_layer::Layer;
use tower_service::Service;

/// A gate on a flag the cache's catalog does not declare.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("flag {0:?} is not declared in the cache's catalog")]
pub struct UndeclaredFlag(pub String);

/// The read a gate decided with, in the extensions of every request it let through.
#[derive(Debug, Clone)]
pub struct Decided(pub FlagView);

/// Gates services on one flag of one cache.
#[derive(Debug, Clone)]
pub struct GateLayer {
    cache: Arc<FlagCache>,
    flag: FlagHandle,
    name: Arc<str>,
}

impl GateLayer {
    /// A gate on `flag`, resolved to its handle now (at init).
    pub fn new(cache: Arc<FlagCache>, flag: &str) -> Result<Self, UndeclaredFlag> {
        let handle = cache
            .handle(flag)
            .ok_or_else(|| UndeclaredFlag(flag.to_owned()))?;
        Ok(Self {
            cache,
            flag: handle,
            name: flag.into(),
        })
    }

    /// The decision alone, for a request carrying `token` (the `Lockstep-Journey` header's
    /// value, if any): the read when the gate is open, else the 503 to answer.
    ///
    /// A flag defined by rules is decided for an anonymous caller here: a route with a verified
    /// caller uses [`GateLayer::check_request`].
    pub async fn check(&self, token: Option<&str>) -> Result<FlagView, ApiError> {
        self.check_for(token, lockstep::targeted::anonymous()).await
    }

    /// [`GateLayer::check`] for the caller `context` (design rule 10): the verified identity,
    /// never a context the client chose.
    pub async fn check_for(
        &self,
        token: Option<&str>,
        context: &lockstep::targeted::Context,
    ) -> Result<FlagView, ApiError> {
        let decision = self.cache.decide_for(self.flag, token, context).await;
        self.cache.metrics().count(decision.metric());
        let path = decision.path();
        match decision.verdict {
            Verdict::Open | Verdict::Draining { .. } => {
                tracing::info!(flag = %self.name, token = token.is_some(), catch_up = ?decision.catch_up, path, "feature gate open");
                Ok(decision.view)
            }
            Verdict::Closed {
                reason,
                retry_after,
            } => {
                tracing::info!(flag = %self.name, token = token.is_some(), catch_up = ?decision.catch_up, path, "feature gate decided closed");
                Err(ApiError::FeatureDisabled {
                    flag: self.name.to_string(),
                    // Whole seconds, rounded up, never 0: a client never retries before the
                    // instance may poll.
                    retry_after: retry_after.as_millis().div_ceil(1000).max(1) as u64,
                    reason,
                })
            }
        }
    }

    /// The decision for a request with these `headers`: [`GateLayer::check`] with the journey
    /// token of its `Lockstep-Journey` header (a value that is not visible ASCII counts as none).
    /// What the layer does before calling its service, for a handler that calls the gate itself
    /// (after its own route and caller checks) instead of wrapping a service in the layer.
    pub async fn check_headers(&self, headers: &HeaderMap) -> Result<FlagView, ApiError> {
        self.check(journey_token(headers)).await
    }

    /// The decision for `request`: its journey token, and for a flag defined by rules its
    /// verified caller ([`identity::verified_context`]: the JWT authorizer's claims, `sub` as the
    /// targeting key). What the layer does before calling its service.
    ///
    /// The caller and the token are read before the decision is awaited, so the future does
    /// not hold the request (whose body need not be `Sync`).
    pub fn check_request<B>(
        &self,
        request: &Request<B>,
    ) -> impl Future<Output = Result<FlagView, ApiError>> + Send + '_ {
        let context = identity::verified_context(request.extensions());
        let token = journey_token(request.headers()).map(str::to_owned);
        async move { self.check_for(token.as_deref(), &context).await }
    }
}

/// The journey token a request carries in its `Lockstep-Journey` header, for every route that
/// reads one (the gate, OFREP); a value that is not visible ASCII counts as none.
pub fn journey_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(journey::HEADER)
        .and_then(|value| value.to_str().ok())
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Gate {
            inner,
            layer: self.clone(),
        }
    }
}

/// A service behind a [`GateLayer`].
#[derive(Debug, Clone)]
pub struct Gate<S> {
    inner: S,
    layer: GateLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Gate<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The service polled ready is the one to call; a clone stays for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            match layer.check_request(&request).await {
                Ok(view) => {
                    request.extensions_mut().insert(Decided(view));
                    inner.call(request).await
                }
                Err(closed) => Ok(closed.into_response()),
            }
        })
    }
}
