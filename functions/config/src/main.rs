use lambda_http::{run, service_fn, Error};
use lockstep_http::catch_panic::{catch_panics, install_quiet_hook};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    install_quiet_hook();
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let catalog = lockstep_sample::product::catalog();
    let cache = lockstep::init::cache_from_env(catalog, &aws).await?;
    let cache = &cache;
    run(catch_panics(service_fn(move |request| async move {
        Ok::<_, Error>(config::handle(cache, &request).await)
    })))
    .await
}
