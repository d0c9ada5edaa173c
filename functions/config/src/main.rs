use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let cache = lockstep::product::cache_from_env(lockstep::product::catalog()).await?;
    let cache = &cache;
    run(service_fn(move |request| async move {
        Ok::<_, Error>(config::handle(cache, &request).await)
    }))
    .await
}
