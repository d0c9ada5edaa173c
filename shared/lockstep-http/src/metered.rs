//! One EMF document per invocation (design rule 11): [`Metered`] wraps a function's service,
//! counts the HTTP answer (`Requests`, `Http401`, `Http403`, `Http4xx`, `Http5xx`) under the
//! request's API Gateway route key, and when the invocation ends writes what the instance
//! counted ([`FlagCache::end_invocation`]) as one line to its [`Sink`] (standard output in
//! Lambda, where CloudWatch Logs extracts the metrics).
//!
//! Put it outside [`crate::catch_panic`], so that a panic's 500 is counted too:
//! `lambda_http::run(metered(cache, emf, catch_panics(service_fn(handler))))`.

use http::{Request, Response, StatusCode};
use lambda_http::request::RequestContext;
use lockstep::metrics::{Count, Emf, Metrics};
use lockstep::FlagCache;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;

/// Where an instance's documents go: one call per invocation, with one document.
pub type Sink = Arc<dyn Fn(String) + Send + Sync>;

/// Standard output, one line per document, as Lambda hands it to CloudWatch Logs.
pub fn stdout() -> Sink {
    Arc::new(|document| {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        // A failed write to stdout loses one invocation's metrics, never the answer.
        let _ = writeln!(out, "{document}");
    })
}

/// `service`, with its invocations counted and written to `sink`.
pub fn metered<S>(cache: Arc<FlagCache>, emf: Emf, sink: Sink, service: S) -> Metered<S> {
    Metered {
        inner: service,
        ends: Arc::new(Ends { cache, emf, sink }),
    }
}

/// A service whose invocations are counted.
#[derive(Clone)]
pub struct Metered<S> {
    inner: S,
    ends: Arc<Ends>,
}

/// What ends each invocation: the instance's counts, where its documents go and how they are
/// dimensioned (one reference count per call, not three).
struct Ends {
    cache: Arc<FlagCache>,
    emf: Emf,
    sink: Sink,
}

impl<S> std::fmt::Debug for Metered<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered")
            .field("emf", &self.ends.emf)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Metered<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = MeteredFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let route = route_key(request.extensions());
        MeteredFuture {
            inner: self.inner.call(request),
            end: Some(End {
                ends: self.ends.clone(),
                route,
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`Metered`] call: the inner service's, then the invocation's end.
    pub struct MeteredFuture<F> {
        #[pin]
        inner: F,
        end: Option<End>,
    }
}

/// What ends an invocation: its answer counted and its document written.
struct End {
    ends: Arc<Ends>,
    route: Option<String>,
}

impl<F, ResBody, E> Future for MeteredFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Some(end) = this.end.take() {
            let status = result.as_ref().ok().map(Response::status);
            let ends = &end.ends;
            if let Some(document) =
                end_invocation(&ends.cache, &ends.emf, end.route.as_deref(), status)
            {
                (ends.sink)(document);
            }
        }
        Poll::Ready(result)
    }
}

/// Ends one HTTP invocation answered with `status` (none when the service failed): counts the
/// answer, then renders what the instance counted as its one document
/// ([`FlagCache::end_invocation`]). What [`Metered`] does, for a host that calls handlers
/// itself (the local runner).
pub fn end_invocation(
    cache: &FlagCache,
    emf: &Emf,
    route: Option<&str>,
    status: Option<StatusCode>,
) -> Option<String> {
    if let Some(status) = status {
        count_status(cache.metrics(), status);
    }
    cache.end_invocation(emf, route)
}

/// Counts one HTTP answer with `status`.
pub fn count_status(metrics: &Metrics, status: StatusCode) {
    metrics.count(Count::Requests);
    if status.is_client_error() {
        metrics.count(Count::Http4xx);
        match status {
            StatusCode::UNAUTHORIZED => metrics.count(Count::Http401),
            StatusCode::FORBIDDEN => metrics.count(Count::Http403),
            _ => {}
        }
    } else if status.is_server_error() {
        metrics.count(Count::Http5xx);
    }
}

/// The API Gateway route key the request came in on (`POST /feature-x/submissions`), never its
/// path: a path may carry ids, and a dimension must not.
pub fn route_key(extensions: &http::Extensions) -> Option<String> {
    match extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => context.route_key.clone(),
        _ => None,
    }
    .filter(|key| !key.is_empty())
}
