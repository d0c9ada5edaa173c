use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let cache = lockstep::product::cache_from_env(lockstep::product::catalog()).await?;
    run(service_fn(|request| async {
        Ok::<_, Error>(config::handle(&cache, request).await)
    }))
    .await
}
