use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use stamping::{handle, AppConfigDeployed, Event};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deployed = AppConfigDeployed {
        client: lockstep::appconfig::client_from_env().await,
    };
    let deployed = &deployed;
    run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<Value, Error>(handle(&event.payload, deployed, chrono::Utc::now()).await)
    }))
    .await
}
