#![allow(dead_code)] // each test crate uses its own part of this file
//! What the runner's tests share: one HTTP exchange through the runner's router.

use axum::body::Body as AxumBody;
use http_body_util::BodyExt;
use lockstep_local::{router, Runner};
use std::sync::Arc;
use tower::ServiceExt;

/// Sends one request through the router, as the HTTP server would; returns the status, the
/// headers and the body's bytes.
pub async fn exchange(
    runner: &Arc<Runner>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, http::HeaderMap, Vec<u8>) {
    let mut request = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request.body(AxumBody::from(body.to_owned())).unwrap();
    let response = router(runner.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes.to_vec())
}

/// `Authorization: Bearer …` for `user`, signed by the runner's local issuer.
pub fn bearer(runner: &Runner, user: &str) -> String {
    format!("Bearer {}", runner.auth().issue(user))
}

/// ministack with the local layout and `flags` deployed as they are (label `v1`), all at once.
pub async fn appconfig(flags: &str) -> lockstep_testkit::ministack::TestAppConfig {
    let appconfig = lockstep_testkit::ministack::TestAppConfig::start(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "lockstep",
        "local",
        "flags",
    )
    .await
    .expect("ministack must start (run ./scripts/venv ministack)");
    appconfig.publish(flags, "v1").await.unwrap();
    appconfig
}

/// What the runner needs of `appconfig`, as `./scripts/run` builds it.
pub fn local(
    appconfig: &lockstep_testkit::ministack::TestAppConfig,
    settings: &lockstep::Settings,
) -> lockstep_local::appconfig::LocalAppConfig {
    lockstep_local::appconfig::LocalAppConfig {
        data: appconfig.data.clone(),
        deployer: lockstep_cli::deploy::Deployer::new(
            appconfig.control.clone(),
            settings.window(),
            Some(lockstep_sample::product::catalog()),
        ),
        cloudwatch: cloudwatch(&appconfig.stack.endpoint),
    }
}

/// A CloudWatch client for ministack's CloudWatch (the template's alarms), dummy credentials.
pub fn cloudwatch(endpoint: &str) -> aws_sdk_cloudwatch::Client {
    use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_cloudwatch::Client::from_conf(config)
}
