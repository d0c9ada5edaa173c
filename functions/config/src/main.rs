use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let catalog = lockstep_sample::product::catalog();
    let cache = lockstep::init::cache_from_env(catalog, &aws).await?;
    let cache = &cache;
    run(service_fn(move |request| async move {
        Ok::<_, Error>(config::handle(cache, &request).await)
    }))
    .await
}
