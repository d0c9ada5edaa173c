use lambda_http::{run, service_fn, Error};
use lockstep::metrics::Emf;
use lockstep_http::catch_panic::{catch_panics, install_quiet_hook};
use lockstep_http::metered::{self, metered};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    install_quiet_hook();
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let catalog = lockstep_sample::product::catalog();
    let cache = Arc::new(lockstep::init::cache_from_env(catalog, &aws).await?);
    let emf = Emf::from_env("config")?;
    let handler = cache.clone();
    run(metered(
        cache,
        emf,
        metered::stdout(),
        catch_panics(service_fn(move |request| {
            let cache = handler.clone();
            async move { Ok::<_, Error>(config::handle(&cache, &request).await) }
        })),
    ))
    .await
}
