//! The environment variables a local run sets for the AWS SDK clients, which read them as they
//! would in Lambda: dummy credentials and P by default, and the local services' endpoints.
//!
//! The process environment is shared by every thread, so these are set from the main thread
//! only: the defaults before any other thread exists, the endpoints before any client is built.

use super::services::LocalServices;

/// Environment defaults of a local run (set only when missing): dummy AWS credentials for the
/// SDK clients and P = 15 s.
pub const LOCAL_DEFAULTS: [(&str, &str); 5] = [
    ("AWS_ACCESS_KEY_ID", "local"),
    ("AWS_SECRET_ACCESS_KEY", "local"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    (lockstep::settings::POLL_INTERVAL_VAR, "15"),
];

/// Sets each of [`LOCAL_DEFAULTS`] that is not set already.
pub fn set_local_defaults() {
    for (name, value) in LOCAL_DEFAULTS {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }
}

/// The clients find the local services the way they would find any endpoint override.
pub fn point_sdk_at(services: &LocalServices) {
    std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", &services.dynamo.endpoint);
    std::env::set_var("AWS_ENDPOINT_URL_APPCONFIG", &services.appconfig.endpoint);
    std::env::set_var(
        "AWS_ENDPOINT_URL_APPCONFIGDATA",
        &services.appconfig.endpoint,
    );
    // The template's alarms live in the same emulator (the environment's monitors).
    std::env::set_var("AWS_ENDPOINT_URL_CLOUDWATCH", &services.appconfig.endpoint);
}
