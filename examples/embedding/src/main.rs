//! The Lambda entry point: builds the flag cache once per instance, then serves requests with
//! `checkout_function::handle` (all the logic is in `lib.rs`, where the tests can call it).

use checkout_function::{catalog, handle, App};
use lambda_http::{run, service_fn, Error};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    // Once per instance, at init: one AWS configuration, one flag cache (it fetches now, so the
    // first request does not wait for AppConfig).
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let cache = Arc::new(lockstep::init::cache_from_env(catalog(), &aws).await?);
    let app = App::new(cache)?;
    let app = &app;
    run(service_fn(move |request| async move {
        Ok::<_, Error>(handle(app, request).await)
    }))
    .await
}
