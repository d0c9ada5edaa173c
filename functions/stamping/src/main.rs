use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lockstep::SystemClock;
use serde_json::Value;
use stamping::{handle, AppConfigDeployed, AppConfigDeployment, Event};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // One AWS configuration, two clients: the control plane (GetDeployment: Δ) and AppConfigData
    // (the deployed content: the previous stamps).
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let deployment = AppConfigDeployment {
        client: aws_sdk_appconfig::Client::new(&aws),
    };
    let deployed = AppConfigDeployed {
        client: lockstep::appconfig::client(&aws),
    };
    let (deployment, deployed) = (&deployment, &deployed);
    run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<Value, Error>(handle(&event.payload, deployment, deployed, &SystemClock).await)
    }))
    .await
}
