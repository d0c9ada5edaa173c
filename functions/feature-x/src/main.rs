use lambda_http::{run, service_fn, Error};
use lockstep::feature_x::FeatureX;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let table = std::env::var("LOCKSTEP_TABLE").map_err(|_| "LOCKSTEP_TABLE is not set")?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let flags = lockstep::product::cache_from_env(lockstep::product::catalog()).await?;
    // The GSI's status is described at most once per P, like the flags are fetched.
    let store = lockstep::dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table)
        .with_index_refresh(
            flags.window().poll_interval,
            Arc::new(lockstep::SystemClock),
        );
    let feature_x = FeatureX {
        flags: Arc::new(flags),
        store: Arc::new(store),
        clock: Arc::new(lockstep::SystemClock),
    };
    let feature_x = &feature_x;
    run(service_fn(move |request| async move {
        Ok::<_, Error>(lockstep::routes::feature_x_function(feature_x, &request).await)
    }))
    .await
}
