//! The gate (design rule 4): a [`tower_layer::Layer`] a user puts in front of their own routes.
//! While its flag is off on this instance it answers 503 with `Retry-After` (P: by then this
//! instance has refreshed) and an `application/problem+json` body naming the flag, before the
//! route sees the request, so nothing is read or written. While the flag is on it passes the
//! request on, with the [`FlagView`] it decided with in the request's extensions ([`Decided`]),
//! so the route's other flag decisions use the same read.
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

use crate::problem::ApiError;
use http::{Request, Response};
use lockstep::{FlagCache, FlagHandle, FlagView};
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

    /// The decision alone: the read when the flag is on, else the 503 to answer.
    pub async fn check(&self) -> Result<FlagView, ApiError> {
        let view = self.cache.read().await;
        if view.enabled(self.flag) {
            Ok(view)
        } else {
            Err(ApiError::FeatureDisabled {
                flag: self.name.to_string(),
                retry_after: view.window().poll_interval.as_secs(),
            })
        }
    }
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
            match layer.check().await {
                Ok(view) => {
                    request.extensions_mut().insert(Decided(view));
                    inner.call(request).await
                }
                Err(closed) => Ok(closed.into_response()),
            }
        })
    }
}
