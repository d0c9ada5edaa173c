use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lockstep::metrics::{Count, Emf, Metrics};
use lockstep::SystemClock;
use serde_json::Value;
use stamping::{handle, outcome_count, AppConfigDeployed, AppConfigDeployment, Event};

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
    let metrics = &Metrics::new();
    metrics.count(Count::ColdStart);
    let emf = &Emf::from_env("stamping")?;
    run(service_fn(move |event: LambdaEvent<Event>| async move {
        let answer = handle(&event.payload, deployment, deployed, &SystemClock).await;
        if let Some(count) = outcome_count(&event.payload, &answer) {
            metrics.count(count);
        }
        let now = chrono::Utc::now().timestamp_millis();
        if let Some(document) = emf.render(&metrics.take(), None, now) {
            println!("{document}");
        }
        Ok::<Value, Error>(answer)
    }))
    .await
}
