use lambda_http::{run, service_fn, Error};
use lockstep::metrics::Emf;
use lockstep::SystemClock;
use lockstep_http::catch_panic::{catch_panics, install_quiet_hook};
use lockstep_http::metered::{self, metered};
use lockstep_sample::{dynamo::DynamoStore, product, FeatureX};
use std::sync::Arc;

/// The function cannot start without its table: template.yaml sets the variable.
#[derive(Debug, thiserror::Error)]
#[error("LOCKSTEP_TABLE is not set: it names the submissions table (template.yaml sets it)")]
struct MissingTable;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    install_quiet_hook();
    let table = std::env::var("LOCKSTEP_TABLE").map_err(|_| MissingTable)?;
    // One AWS configuration for every client of this function.
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let flags = lockstep::init::cache_from_env(product::catalog(), &aws).await?;
    // The GSI's status is described at most once per P, like the flags are fetched.
    let store = DynamoStore::new(lockstep_sample::dynamo::client(&aws), table)
        .with_index_refresh(flags.window().poll_interval, Arc::new(SystemClock));
    let flags = Arc::new(flags);
    let emf = Emf::from_env("feature-x")?;
    let feature_x = Arc::new(FeatureX::new(
        flags.clone(),
        Arc::new(store),
        Arc::new(SystemClock),
    )?);
    run(metered(
        flags,
        emf,
        metered::stdout(),
        catch_panics(service_fn(move |request| {
            let feature_x = feature_x.clone();
            async move { Ok::<_, Error>(feature_x.serve(request).await) }
        })),
    ))
    .await
}
