//! Fidelity checks with clients nobody here wrote: the AWS CLI (`aws appconfigdata
//! start-configuration-session` / `get-latest-configuration`) and boto3, both from the venv
//! `./scripts/venv ministack` makes, read from the runner's ministack the same configuration the
//! runner's instances serve on `/config`.
//!
//! Why: the runner's other tests read ministack through the Rust SDK, the client the runner
//! itself uses, so a fault shared by the runner's reads and the emulator (a label dropped,
//! content rewritten, a stamp that means something else to another client) would pass unseen.
//! Here the deployment is made and stamped by our code (`POST /local/deployments`), the
//! instances read it through their own AppConfigData sessions, and two independent clients read
//! it again: the version label must be the instances' `configurationVersion`, and the content,
//! parsed with `lockstep::document::parse`, must give every public flag's value and
//! `consistentAt = T + Δ + P + ε` exactly as `/config` reports them. A second read on the same
//! session is empty for every client, which is what the runner's `AppConfigSource` treats as
//! unchanged.
//!
//! The clients run as processes (`std::process::Command` on a blocking thread) with dummy
//! credentials, `--endpoint-url` / `endpoint_url=`, and no profile, config file or home of the
//! developer's. A missing venv fails the tests: they are never skipped.

use chrono::{DateTime, Utc};
use lockstep::consistency::consistent_at;
use lockstep::{ConfigSource, Overrides, Settings, SystemClock, Window};
use lockstep_local::fleet::{FleetOptions, INSTANCE_HEADER};
use lockstep_local::Runner;
use lockstep_testkit::ministack::TestAppConfig;
use lockstep_testkit::MemoryStore;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

const INSTANCES: usize = 2;
const P: u64 = 15;
/// The content deployed first (label `v1`); the deployment under test turns `isFeatureXEnabled`
/// on and keeps `useSubmissionsGsi`'s stamp.
const DISABLED: &str = r#"{"isFeatureXEnabled": false, "useSubmissionsGsi": false, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T09:00:00Z", "deploymentDurationSeconds": 0}}"#;
const FEATURE_X: &str = "isFeatureXEnabled";

/// boto3's reads: one session, `argv[2]` calls of GetLatestConfiguration, each following the
/// previous call's NextPollConfigurationToken; prints a JSON array of
/// `{"versionLabel", "content", "boto3"}`.
const BOTO3_READS: &str = r#"
import json
import sys

import boto3

endpoint, reads = sys.argv[1], int(sys.argv[2])
client = boto3.client("appconfigdata", endpoint_url=endpoint)
token = client.start_configuration_session(
    ApplicationIdentifier="lockstep",
    EnvironmentIdentifier="local",
    ConfigurationProfileIdentifier="flags",
    RequiredMinimumPollIntervalInSeconds=15,
)["InitialConfigurationToken"]
out = []
for _ in range(reads):
    answer = client.get_latest_configuration(ConfigurationToken=token)
    token = answer["NextPollConfigurationToken"]
    out.append({
        "versionLabel": answer.get("VersionLabel"),
        "content": answer["Configuration"].read().decode("utf-8"),
        "boto3": boto3.__version__,
    })
print(json.dumps(out))
"#;

fn settings() -> Settings {
    Settings {
        poll_interval: Duration::from_secs(P),
        ..Settings::default()
    }
}

async fn runner(appconfig: &TestAppConfig, instances: usize) -> Arc<Runner> {
    let settings = settings();
    let runner = Runner::new(
        support::local(appconfig, &settings),
        settings,
        Overrides::none(),
        Arc::new(SystemClock),
        Arc::new(MemoryStore::new()),
        None,
        FleetOptions {
            instances,
            stagger: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    Arc::new(runner)
}

/// A stamped deployment, and what the runner's instances serve of it.
struct Served {
    appconfig: TestAppConfig,
    /// Kept alive while the clients read.
    _runner: Arc<Runner>,
    window: Window,
    /// The deployment's label, from `POST /local/deployments`.
    version_label: String,
    /// The content the control plane says is deployed (latest `COMPLETE` deployment).
    deployed: Vec<u8>,
    /// Each instance's `/config` body.
    configs: BTreeMap<String, Value>,
}

/// ministack with `DISABLED`, then `isFeatureXEnabled = true` deployed all at once through the
/// runner's `POST /local/deployments` (stamped by our code); the fleet under test (2 instances,
/// no stagger) starts once that deployment is `COMPLETE`, so every instance's first fetch sees
/// it. Fails unless every instance serves the new label within P + 5 s.
async fn served() -> Served {
    venv();
    let appconfig = support::appconfig(DISABLED).await;
    let local = support::local(&appconfig, &settings());

    let deploying = runner(&appconfig, 1).await;
    let (status, _, bytes) = support::exchange(
        &deploying,
        "POST",
        "/local/deployments",
        &[("content-type", "application/json")],
        &json!({"flags": {"isFeatureXEnabled": true}, "strategy": "lockstep-all-at-once"})
            .to_string(),
    )
    .await;
    let started: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(status, 201, "{started}");
    drop(deploying);
    let version_label = started["versionLabel"].as_str().unwrap().to_owned();
    let number = i32::try_from(started["deploymentNumber"].as_i64().unwrap()).unwrap();

    let ids = local.resolved().await.unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let progress = local.deployer.progress(&ids, number).await.unwrap();
        if progress.state == "COMPLETE" {
            break;
        }
        assert!(Instant::now() < until, "deployment {number}: {progress:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (label, deployed) = local
        .deployer
        .deployed_version(&ids)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(label.as_deref(), Some(version_label.as_str()));

    let runner = runner(&appconfig, INSTANCES).await;
    let mut configs = BTreeMap::new();
    let until = Instant::now() + Duration::from_secs(P + 5);
    loop {
        let (status, headers, bytes) = support::exchange(&runner, "GET", "/config", &[], "").await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        let instance = headers[INSTANCE_HEADER].to_str().unwrap().to_owned();
        configs.insert(instance, serde_json::from_slice::<Value>(&bytes).unwrap());
        let current = configs
            .values()
            .filter(|c| c["configurationVersion"] == version_label.as_str())
            .count();
        if current == INSTANCES {
            break;
        }
        let versions: BTreeMap<_, _> = configs
            .iter()
            .map(|(i, c)| (i, &c["configurationVersion"]))
            .collect();
        assert!(
            Instant::now() < until,
            "the instances did not all serve {version_label}: {versions:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    Served {
        appconfig,
        _runner: runner,
        window: settings().window(),
        version_label,
        deployed,
        configs,
    }
}

/// One GetLatestConfiguration as a client saw it.
#[derive(Debug)]
struct Read {
    version_label: Option<String>,
    content: Vec<u8>,
    /// The token for the next call on the same session (CLI only).
    next_token: Option<String>,
    /// The client's answer and stderr, for the assertion messages.
    output: String,
}

/// The venv's `bin/aws` and `bin/python`, resolved as the test kit resolves ministack's:
/// `LOCKSTEP_MINISTACK_VENV`, else `.venv-ministack`, under the project root.
fn venv() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let venv = std::env::var_os("LOCKSTEP_MINISTACK_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".venv-ministack"));
    let venv = root.join(venv);
    let (aws, python) = (venv.join("bin/aws"), venv.join("bin/python"));
    for tool in [&aws, &python] {
        assert!(
            tool.is_file(),
            "{} is missing: run ./scripts/venv ministack (the fidelity checks need the AWS CLI \
             and boto3; they are never skipped)",
            tool.display()
        );
    }
    (aws, python)
}

/// A scratch directory for one test (the CLI's output files and the clients' home), removed
/// when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("fidelity")
            .join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `program args` on a blocking thread with only the environment the clients need: dummy
/// credentials, the region, no instance metadata, no config or credentials file, and `home` as
/// HOME (so no `~/.aws` of the developer's is read).
async fn run(program: PathBuf, args: Vec<String>, home: PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(&program);
        command.args(&args).env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command
            .env("HOME", &home)
            .env("PYTHONNOUSERSITE", "1")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        assert!(
            output.status.success(),
            "{} {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            program.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    })
    .await
    .unwrap()
}

/// `aws appconfigdata start-configuration-session`: the initial token.
async fn cli_session(endpoint: &str, home: &Path) -> String {
    let (aws, _) = venv();
    let args = [
        "appconfigdata",
        "start-configuration-session",
        "--application-identifier",
        "lockstep",
        "--environment-identifier",
        "local",
        "--configuration-profile-identifier",
        "flags",
        "--required-minimum-poll-interval-in-seconds",
        "15",
        "--query",
        "InitialConfigurationToken",
        "--output",
        "text",
        "--endpoint-url",
        endpoint,
    ];
    let output = run(aws, args.map(str::to_owned).to_vec(), home.to_owned()).await;
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(
        !token.is_empty() && token != "None",
        "no InitialConfigurationToken; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    token
}

/// `aws appconfigdata get-latest-configuration --configuration-token TOKEN OUTFILE`: the label
/// and next token from its stdout, the content from OUTFILE.
async fn cli_read(endpoint: &str, token: &str, outfile: &Path, home: &Path) -> Read {
    let (aws, _) = venv();
    let _ = std::fs::remove_file(outfile);
    let args = vec![
        "appconfigdata".to_owned(),
        "get-latest-configuration".to_owned(),
        "--configuration-token".to_owned(),
        token.to_owned(),
        outfile.display().to_string(),
        "--endpoint-url".to_owned(),
        endpoint.to_owned(),
    ];
    let output = run(aws, args, home.to_owned()).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the CLI's answer is not JSON ({e}): {}; stderr: {stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    let content = std::fs::read(outfile).unwrap_or_else(|e| {
        panic!(
            "the CLI wrote no {}: {e}; stderr: {stderr}",
            outfile.display()
        )
    });
    Read {
        version_label: answer["VersionLabel"].as_str().map(str::to_owned),
        content,
        next_token: answer["NextPollConfigurationToken"]
            .as_str()
            .map(str::to_owned),
        output: format!("{answer}\nstderr: {stderr}"),
    }
}

/// `reads` GetLatestConfiguration calls on one boto3 session ([`BOTO3_READS`]).
async fn boto3_reads(endpoint: &str, reads: usize, home: &Path) -> Vec<Read> {
    let (_, python) = venv();
    let args = vec![
        "-c".to_owned(),
        BOTO3_READS.to_owned(),
        endpoint.to_owned(),
        reads.to_string(),
    ];
    let output = run(python, args, home.to_owned()).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let answers: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "boto3's answer is not JSON ({e}): {}; stderr: {stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert_eq!(answers.len(), reads, "stderr: {stderr}");
    answers
        .into_iter()
        .map(|answer| Read {
            version_label: answer["versionLabel"].as_str().map(str::to_owned),
            content: answer["content"].as_str().unwrap().as_bytes().to_vec(),
            next_token: None,
            output: format!("boto3 {}: {answer}\nstderr: {stderr}", answer["boto3"]),
        })
        .collect()
}

fn at(value: &Value) -> Option<DateTime<Utc>> {
    serde_json::from_value(value.clone()).unwrap()
}

/// `client`'s read is what every instance serves: the label is `configurationVersion`; the
/// content is the deployed content and, parsed, gives `isFeatureXEnabled`, the profile stamp T
/// and each public flag's value and `consistentAt` (T + Δ + P + ε) as `/config` reports them.
fn assert_reads_as_served(client: &str, read: &Read, served: &Served) {
    let context = format!("{client}'s read; its output: {}", read.output);
    assert_eq!(
        read.version_label.as_deref(),
        Some(served.version_label.as_str()),
        "{context}"
    );
    assert_eq!(
        String::from_utf8_lossy(&read.content),
        String::from_utf8_lossy(&served.deployed),
        "{client} read other content than the deployed version; {context}"
    );
    let doc = lockstep::document::parse(&read.content)
        .unwrap_or_else(|e| panic!("{client}'s content does not parse: {e}; {context}"));
    let profile_stamp = doc.profile_stamp.map(|s| s.at);
    assert!(
        profile_stamp.is_some(),
        "{client}'s content is unstamped; {context}"
    );
    assert_eq!(
        doc.flags.get(FEATURE_X).map(|f| f.enabled),
        Some(true),
        "{context}"
    );

    for (instance, config) in &served.configs {
        let context = format!("{instance}'s /config {config}; {context}");
        assert_eq!(
            config["configurationVersion"].as_str(),
            read.version_label.as_deref(),
            "{context}"
        );
        assert_eq!(
            config[FEATURE_X].as_bool(),
            Some(doc.flags[FEATURE_X].enabled),
            "{context}"
        );
        assert_eq!(
            at(&config["lastModifiedTimestamp"]),
            profile_stamp,
            "{context}"
        );
        let public = config["flags"].as_object().unwrap();
        assert!(public.contains_key(FEATURE_X), "{context}");
        for (name, status) in public {
            let flag = doc
                .flags
                .get(name)
                .unwrap_or_else(|| panic!("{client}'s content has no {name}; {context}"));
            assert_eq!(
                status["value"].as_bool(),
                Some(flag.enabled),
                "{name}; {context}"
            );
            let expected = consistent_at(flag.stamp, false, served.window);
            assert!(expected.is_some(), "{name} is unstamped; {context}");
            assert_eq!(at(&status["consistentAt"]), expected, "{name}; {context}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_cli_reads_the_version_and_content_the_instances_serve() {
    let served = served().await;
    let scratch = Scratch::new("cli");
    let home = &scratch.0;
    let endpoint = &served.appconfig.stack.endpoint;

    let token = cli_session(endpoint, home).await;
    let read = cli_read(endpoint, &token, &home.join("configuration"), home).await;

    assert_reads_as_served("the AWS CLI", &read, &served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_reads_the_same_configuration_as_the_instances() {
    let served = served().await;
    let scratch = Scratch::new("boto3");
    let home = &scratch.0;

    let reads = boto3_reads(&served.appconfig.stack.endpoint, 1, home).await;

    assert_reads_as_served("boto3", &reads[0], &served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_read_on_the_same_session_is_empty_for_every_client() {
    let served = served().await;
    let scratch = Scratch::new("second-read");
    let home = &scratch.0;
    let endpoint = &served.appconfig.stack.endpoint;

    let token = cli_session(endpoint, home).await;
    let cli_first = cli_read(endpoint, &token, &home.join("first"), home).await;
    let next = cli_first.next_token.clone().unwrap_or_else(|| {
        panic!(
            "no NextPollConfigurationToken; output: {}",
            cli_first.output
        )
    });
    let cli_second = cli_read(endpoint, &next, &home.join("second"), home).await;

    let boto3 = boto3_reads(endpoint, 2, home).await;

    let mut source = lockstep::appconfig::AppConfigSource::new(
        served.appconfig.data.clone(),
        lockstep_local::appconfig::target(),
    );
    let source_first = source.fetch(Utc::now()).await.unwrap();
    let source_second = source.fetch(Utc::now()).await.unwrap();

    // The first read of each session is the whole deployed content; the second is empty.
    assert_reads_as_served("the AWS CLI", &cli_first, &served);
    assert_reads_as_served("boto3", &boto3[0], &served);
    let first = source_first
        .content
        .expect("the runner's AppConfigSource got no content on its first read");
    assert_eq!(first.version, served.version_label);
    assert_eq!(first.bytes, served.deployed);

    assert!(
        cli_second.content.is_empty(),
        "the AWS CLI's second read wrote {:?}; output: {}",
        String::from_utf8_lossy(&cli_second.content),
        cli_second.output
    );
    assert!(
        boto3[1].content.is_empty(),
        "boto3's second read returned {:?}; output: {}",
        String::from_utf8_lossy(&boto3[1].content),
        boto3[1].output
    );
    assert_eq!(
        source_second.content, None,
        "the runner's AppConfigSource must see the second read as unchanged"
    );
}
