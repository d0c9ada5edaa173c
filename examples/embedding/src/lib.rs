//! A `lambda_http` function with Lockstep flags:
//!
//! - `POST /checkout` runs behind a gate on `isCheckoutV2Enabled`: while the flag is off, the gate
//!   answers 503 (`Retry-After`, problem+json naming the flag) and the route never runs.
//! - `GET /config` is Lockstep's config endpoint: the public flags and `isBackendConsistent`.
//! - Any other path answers 404.
//!
//! The logic lives here, not in `main.rs`, so tests call [`handle`] without a server.

use lambda_http::http::{header::CONTENT_TYPE, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use lockstep::{FlagCache, FlagCatalog, FlagDecl, FlagHandle};
use lockstep_http::gate::UndeclaredFlag;
use lockstep_http::problem::{path_segments, ApiError};
use lockstep_http::{config_routes, Decided, GateLayer};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tower::{service_fn, Layer, ServiceExt};

/// The new checkout is open (public: `/config` shows it to the SPA).
pub const CHECKOUT_V2: &str = "isCheckoutV2Enabled";
/// Checkout applies the loyalty discount (internal: `/config` never shows it).
pub const LOYALTY_DISCOUNT: &str = "applyLoyaltyDiscount";

/// The flags this function reads. Both are off until a configuration says otherwise.
pub fn catalog() -> FlagCatalog {
    FlagCatalog::new(vec![
        FlagDecl::public(CHECKOUT_V2),
        FlagDecl::internal(LOYALTY_DISCOUNT),
    ])
    .expect("the catalog is valid")
}

/// What the handlers need, built once at init.
#[derive(Clone)]
pub struct App {
    cache: Arc<FlagCache>,
    gate: GateLayer,
    loyalty: FlagHandle,
    orders: Arc<AtomicUsize>,
}

impl App {
    /// The app over `cache`: the gate and the flag handles are resolved here, once, so a typo
    /// in a flag name stops the function at init.
    pub fn new(cache: Arc<FlagCache>) -> Result<Self, UndeclaredFlag> {
        let gate = GateLayer::new(cache.clone(), CHECKOUT_V2)?;
        let loyalty = cache
            .handle(LOYALTY_DISCOUNT)
            .ok_or_else(|| UndeclaredFlag(LOYALTY_DISCOUNT.into()))?;
        Ok(Self {
            cache,
            gate,
            loyalty,
            orders: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// How many orders the checkout route took (it stands in for your own work, such as a
    /// database write).
    pub fn orders_taken(&self) -> usize {
        self.orders.load(Ordering::SeqCst)
    }
}

/// The checkout route. The gate already decided that `isCheckoutV2Enabled` is on; the route
/// decides its other flags with the same read, which the gate left in the request's extensions.
pub async fn checkout(app: &App, request: Request) -> Result<Response<Body>, Infallible> {
    let loyalty = match request.extensions().get::<Decided>() {
        Some(Decided(view)) => view.enabled(app.loyalty),
        // Not behind the gate: read the flag by its handle (refreshes first when due).
        None => app
            .cache
            .flag(app.loyalty)
            .await
            .is_some_and(|status| status.value),
    };
    let order = app.orders.fetch_add(1, Ordering::SeqCst) + 1;
    let body = format!(r#"{{"order":{order},"checkout":"v2","loyaltyDiscount":{loyalty}}}"#);
    Ok(Response::builder()
        .status(StatusCode::CREATED)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("static headers are valid"))
}

/// The function: `GET /config`, `POST /checkout` behind the gate, 404 for any other path.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    match path_segments(&request).as_slice() {
        ["config"] => config_routes::serve(&app.cache, &request).await,
        ["checkout"] if request.method() == Method::POST => {
            let route = app.clone();
            let gated = app.gate.layer(service_fn(move |request: Request| {
                let app = route.clone();
                async move { checkout(&app, request).await }
            }));
            match gated.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
        ["checkout"] => ApiError::MethodNotAllowed { allowed: &["POST"] }.into_response(),
        _ => ApiError::NotFound.into_response(),
    }
}
