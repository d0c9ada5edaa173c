//! The local services a run needs, started together and stopped together: DynamoDB Local (the
//! submissions and the durable snapshots; from `node_modules`) and ministack (the local AppConfig
//! control plane and AppConfigData; from `.venv-ministack`), both on 127.0.0.1.

use super::StartError;
use lockstep_testkit::dynamo_local::DynamoLocal;
use lockstep_testkit::ministack::Ministack;
use std::path::Path;

/// DynamoDB Local and ministack, running.
pub struct LocalServices {
    /// DynamoDB Local.
    pub dynamo: DynamoLocal,
    /// The local AppConfig.
    pub appconfig: Ministack,
}

impl LocalServices {
    /// Starts both at once (each takes a few seconds), found from `cwd` upwards; DynamoDB Local
    /// on `dynamodb_port` (0: a free port).
    pub async fn start(cwd: &Path, dynamodb_port: u16) -> Result<Self, StartError> {
        let root = DynamoLocal::find_root(cwd).ok_or(StartError::NoDynamoLocal)?;
        eprintln!("starting DynamoDB Local and ministack (takes a few seconds)...");
        let (dynamo, appconfig) = tokio::join!(
            DynamoLocal::start(&root, dynamodb_port, &[]),
            Ministack::start_from(cwd)
        );
        Ok(Self {
            dynamo: dynamo.map_err(StartError::DynamoLocal)?,
            appconfig: appconfig?,
        })
    }

    /// Stops both.
    pub async fn stop(self) {
        self.dynamo.stop().await;
        self.appconfig.stop().await;
    }
}
