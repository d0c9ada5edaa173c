//! What the local services must hold before the runner starts: the DynamoDB tables (created
//! when missing), the AppConfig application, environment, profiles and strategies, the initial
//! flags deployed once (stamped, all at once, through `lockstep deploy`'s code), and the file
//! that tells `./scripts/deploy-local` where the local AppConfig is.

use super::StartError;
use crate::appconfig::{target, LocalAppConfig};
use aws_config::SdkConfig;
use lockstep::durable::{DynamoSnapshots, SnapshotStore};
use lockstep::{FlagCatalog, Settings, SystemClock};
use lockstep_cli::deploy::{Changes, Deployer, Request};
use lockstep_sample::dynamo::DynamoStore;
use lockstep_sample::submissions::SubmissionStore;
use lockstep_testkit::dynamo_local::{ensure_snapshot_table, ensure_table};
use lockstep_testkit::ministack::{create_layout, LOCAL_STRATEGIES};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The submissions table of a local run.
pub const TABLE: &str = "lockstep-local-submissions";

/// The durable snapshots table of a local run.
pub const SNAPSHOT_TABLE: &str = "lockstep-local-snapshots";

/// Where a running runner writes its local AppConfig endpoint, for `./scripts/deploy-local`.
pub const ENDPOINT_FILE: &str = ".lockstep/local/appconfig-endpoint";

/// The stores over DynamoDB Local.
pub struct Stores {
    /// The submissions.
    pub submissions: Arc<dyn SubmissionStore>,
    /// The last-known-good snapshots.
    pub snapshots: Arc<dyn SnapshotStore>,
}

/// Creates the tables when missing, and the stores over them.
pub async fn stores(aws: &SdkConfig, settings: &Settings) -> Result<Stores, StartError> {
    let client = aws_sdk_dynamodb::Client::new(aws);
    ensure_table(&client, TABLE, true)
        .await
        .map_err(StartError::Tables)?;
    ensure_snapshot_table(&client, SNAPSHOT_TABLE)
        .await
        .map_err(StartError::Tables)?;
    let snapshots = DynamoSnapshots::new(
        client.clone(),
        SNAPSHOT_TABLE,
        &lockstep::init::local_target(),
    );
    // The GSI's status is described at most once per P, as in the function.
    let submissions = DynamoStore::new(client, TABLE)
        .with_index_refresh(settings.poll_interval, Arc::new(SystemClock));
    Ok(Stores {
        submissions: Arc::new(submissions),
        snapshots: Arc::new(snapshots),
    })
}

/// Creates the AppConfig layout and deploys `initial_flags` once, stamped, all at once; returns
/// when the deployment is `COMPLETE` (served from then on; consistent P + ε later, like any
/// deployment).
pub async fn appconfig(
    aws: &SdkConfig,
    settings: &Settings,
    catalog: FlagCatalog,
    initial_flags: &Path,
) -> Result<LocalAppConfig, StartError> {
    let control = aws_sdk_appconfig::Client::new(aws);
    let target = target();
    create_layout(
        &control,
        &target.application,
        &target.environment,
        &target.profile,
    )
    .await?;
    let deployer = Deployer::new(control, settings.window(), Some(catalog));
    let content = std::fs::read(initial_flags).map_err(|source| StartError::InitialFlags {
        path: initial_flags.to_owned(),
        source,
    })?;
    let first = Request {
        target,
        changes: Changes::Content(content),
        strategy: LOCAL_STRATEGIES[0].0.into(),
        description: Some("the initial flags".into()),
        allow_new_flags: false,
        drain: None,
        rotate_journey_key: false,
    };
    let started = deployer.deploy(&first, chrono::Utc::now).await?;
    deployer
        .wait_complete(&started, Duration::from_millis(100))
        .await?;
    Ok(LocalAppConfig {
        data: lockstep::appconfig::client(aws),
        deployer,
        cloudwatch: aws_sdk_cloudwatch::Client::new(aws),
    })
}

/// Writes `endpoint` to [`ENDPOINT_FILE`] (relative to the working directory).
pub fn write_endpoint_file(endpoint: &str) -> Result<(), StartError> {
    let path = Path::new(ENDPOINT_FILE);
    let failed = |source| StartError::EndpointFile {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    std::fs::write(path, endpoint).map_err(failed)
}
