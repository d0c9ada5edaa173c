//! The last resort: a handler that panics answers a 500 `application/problem+json` that echoes
//! nothing from the request, instead of a dropped connection (locally) or Lambda's own error.
//!
//! [`CatchPanicLayer`] catches a panic in the wrapped service's `call` and in its future, logs
//! `path=panic_caught` with no part of the request or of the panic's message (which may quote
//! input), and answers [`ApiError::Internal`]. The process's panic hook still runs first: Rust's
//! default hook prints the message to stderr, so a function installs [`install_quiet_hook`],
//! which logs only where the panic happened.

use crate::problem::ApiError;
use futures_util::future::{CatchUnwind, Either, FutureExt, Map, Ready};
use http::{Request, Response};
use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Wraps a service so that a panic becomes a 500 problem+json.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic { inner }
    }
}

/// `service`, with a panic in it answered 500 problem+json (what [`CatchPanicLayer`] does, for
/// code that does not build a `tower` stack).
pub fn catch_panics<S>(service: S) -> CatchPanic<S> {
    CatchPanic { inner: service }
}

/// A service behind a [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

type Caught<B, E> = Result<Result<Response<B>, E>, Box<dyn Any + Send>>;

/// The future of a [`CatchPanic`] call.
pub type CatchPanicFuture<F, B, E> = Either<
    Map<CatchUnwind<AssertUnwindSafe<F>>, fn(Caught<B, E>) -> Result<Response<B>, E>>,
    Ready<Result<Response<B>, E>>,
>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CatchPanic<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = CatchPanicFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let inner = &mut self.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(move || inner.call(request))) {
            Ok(future) => Either::Left(
                AssertUnwindSafe(future)
                    .catch_unwind()
                    .map(settle as fn(Caught<ResBody, S::Error>) -> _),
            ),
            Err(_) => Either::Right(futures_util::future::ready(Ok(internal()))),
        }
    }
}

fn settle<B: From<String>, E>(caught: Caught<B, E>) -> Result<Response<B>, E> {
    caught.unwrap_or_else(|_| Ok(internal()))
}

fn internal<B: From<String>>() -> Response<B> {
    tracing::error!(path = "panic_caught", "a handler panicked; answered 500");
    ApiError::Internal("a handler panicked".into()).into_response()
}

/// Replaces the process's panic hook with one that logs where a panic happened and nothing of
/// its message (a message may quote the request). Call it once, first thing in `main`.
pub fn install_quiet_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(
            location,
            path = "panic",
            "panic (message withheld: it may quote input)"
        );
    }));
}
