//! What the local services' launchers share: a free loopback port, waiting until a service
//! answers, and SDK clients for a local endpoint with dummy credentials.

use std::future::Future;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, then released for the service to take).
pub(crate) fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Calls `answers` every `every` until it says yes or `limit` passes; logs how long it took.
pub(crate) async fn wait_until_answering<F, Fut>(
    name: &str,
    endpoint: &str,
    limit: Duration,
    every: Duration,
    answers: F,
) -> bool
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if answers().await {
            tracing::info!(
                service = name,
                endpoint,
                ms = started.elapsed().as_millis() as u64,
                "local service answering"
            );
            return true;
        }
        tokio::time::sleep(every).await;
    }
    false
}

/// The configuration of an AWS SDK client for a local endpoint: region `us-east-1`, dummy
/// credentials (the local services check none, but ministack routes on the signature).
macro_rules! local_config {
    ($sdk:ident, $endpoint:expr) => {
        $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("us-east-1"))
            .credentials_provider($sdk::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "lockstep-local",
            ))
            .endpoint_url($endpoint)
    };
}
pub(crate) use local_config;
