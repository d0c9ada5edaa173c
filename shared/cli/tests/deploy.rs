//! `lockstep deploy` against ministack, the local AppConfig: Δ from the strategy itself, kept
//! stamps, `--wait` to consistency, and the refusals (a deployment in progress, undeclared
//! flags, unknown names, a rollback by a user or by an alarm of the environment's monitors).
//! Each test starts its own ministack on 127.0.0.1; a missing venv fails the test loudly.

use aws_sdk_appconfig::Client;
use chrono::{TimeDelta, Utc};
use lockstep::consistency::Window;
use lockstep::stamp::Change;
use lockstep_cli::deploy::{Changes, DeployError, Deployer, Request, Started, Target};
use lockstep_testkit::ministack::{appconfig_client, create_layout, Ministack};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const WINDOW: Window = Window {
    poll_interval: Duration::from_secs(15),
    epsilon: Duration::from_secs(5),
};

const SAMPLE: &str = r#"{"isFeatureXEnabled": false, "useSubmissionsGsi": false}"#;

async fn ministack() -> (Ministack, Client) {
    let stack = Ministack::start_from(Path::new(env!("CARGO_MANIFEST_DIR")))
        .await
        .expect("ministack must start (run ./scripts/venv ministack)");
    let client = appconfig_client(&stack.endpoint);
    create_layout(&client, "lockstep", "test", "flags")
        .await
        .expect("the local layout");
    (stack, client)
}

fn target() -> Target {
    Target {
        application: "lockstep".into(),
        environment: "test".into(),
        profile: "flags".into(),
    }
}

fn request(changes: Changes, strategy: &str) -> Request {
    Request {
        target: target(),
        changes,
        strategy: strategy.into(),
        description: None,
        allow_new_flags: false,
        drain: None,
        rotate_journey_key: false,
    }
}

fn set(pairs: &[(&str, bool)]) -> Changes {
    Changes::Set(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<BTreeMap<_, _>>(),
    )
}

/// Deploys the sample all at once and waits until it is COMPLETE.
async fn first_deployment(deployer: &Deployer) {
    let started = deployer
        .deploy(
            &request(Changes::Content(SAMPLE.into()), "lockstep-all-at-once"),
            Utc::now,
        )
        .await
        .unwrap();
    loop {
        let progress = deployer
            .progress(&started.resolved, started.deployment_number)
            .await
            .unwrap();
        if progress.state == "COMPLETE" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_deployment_is_stamped_with_its_strategys_own_duration_and_keeps_unchanged_stamps() {
    let (_stack, client) = ministack().await;
    let deployer = Deployer::new(client.clone(), WINDOW, None);
    first_deployment(&deployer).await;

    let before = Utc::now();
    let started = deployer
        .deploy(
            &request(
                set(&[("isFeatureXEnabled", true)]),
                "lockstep-linear-25pct-1min",
            ),
            Utc::now,
        )
        .await
        .unwrap();
    let after = Utc::now();

    assert_eq!(
        started.strategy.duration,
        Duration::from_secs(60),
        "Δ from GetDeploymentStrategy"
    );
    let t = started.last_modified_timestamp;
    assert!(
        before - TimeDelta::milliseconds(1) <= t && t <= after,
        "T is the deployment's start"
    );
    let x = &started.flags["isFeatureXEnabled"];
    assert_eq!((x.value, x.change), (true, Change::Changed));
    assert_eq!(x.deployment_duration_seconds, 60);
    assert_eq!(
        started.consistent_at,
        Some(t + TimeDelta::seconds(60 + 15 + 5)),
        "consistentAt = T + Δ(strategy) + P + ε"
    );
    let gsi = &started.flags["useSubmissionsGsi"];
    assert_eq!(gsi.change, Change::Kept);
    assert!(
        gsi.last_modified_timestamp < t,
        "an unchanged flag keeps its earlier stamp"
    );
    // What AppConfig holds is what was reported.
    let hosted = client
        .get_hosted_configuration_version()
        .application_id(&started.resolved.application)
        .configuration_profile_id(&started.resolved.profile)
        .version_number(started.configuration_version)
        .send()
        .await
        .unwrap();
    let doc = lockstep::document::parse(hosted.content().unwrap().as_ref()).unwrap();
    let stamp = doc.flags["isFeatureXEnabled"].stamp.unwrap();
    assert_eq!(
        (stamp.at, stamp.deployment_duration),
        (t, Duration::from_secs(60))
    );
}

#[tokio::test]
async fn a_deployment_while_another_is_in_progress_is_refused_and_creates_nothing() {
    let (_stack, client) = ministack().await;
    let deployer = Deployer::new(client.clone(), WINDOW, None);
    first_deployment(&deployer).await;
    let running = deployer
        .deploy(
            &request(
                set(&[("isFeatureXEnabled", true)]),
                "lockstep-linear-25pct-1min",
            ),
            Utc::now,
        )
        .await
        .unwrap();
    let ids = running.resolved.clone();
    let versions = || {
        let (client, ids) = (client.clone(), ids.clone());
        async move {
            client
                .list_hosted_configuration_versions()
                .application_id(&ids.application)
                .configuration_profile_id(&ids.profile)
                .send()
                .await
                .unwrap()
                .items()
                .len()
        }
    };
    let before = versions().await;

    let refused = deployer
        .deploy(
            &request(set(&[("useSubmissionsGsi", true)]), "lockstep-all-at-once"),
            Utc::now,
        )
        .await
        .unwrap_err();

    assert!(
        matches!(refused, DeployError::InProgress { number, .. } if number == running.deployment_number),
        "{refused}"
    );
    assert!(refused.is_refusal());
    assert_eq!(versions().await, before, "no hosted version was created");
}

#[tokio::test]
async fn undeclared_flags_unknown_strategies_and_unknown_targets_are_refused() {
    let (_stack, client) = ministack().await;
    let deployer = Deployer::new(client.clone(), WINDOW, None);
    first_deployment(&deployer).await;
    let catalog =
        lockstep::FlagCatalog::new(vec![lockstep::FlagDecl::public("isFeatureXEnabled")]).unwrap();
    let declared = Deployer::new(client, WINDOW, Some(catalog));

    let typo = deployer
        .deploy(
            &request(set(&[("isFeatureXEnabeld", true)]), "lockstep-all-at-once"),
            Utc::now,
        )
        .await
        .unwrap_err();
    let undeclared = declared
        .deploy(
            &request(set(&[("useSubmissionsGsi", true)]), "lockstep-all-at-once"),
            Utc::now,
        )
        .await
        .unwrap_err();
    let strategy = deployer
        .deploy(
            &request(set(&[("isFeatureXEnabled", true)]), "NoSuchStrategy"),
            Utc::now,
        )
        .await
        .unwrap_err();
    let mut elsewhere = request(set(&[("isFeatureXEnabled", true)]), "lockstep-all-at-once");
    elsewhere.target.environment = "prod".into();
    let environment = deployer.deploy(&elsewhere, Utc::now).await.unwrap_err();

    assert!(
        matches!(typo, DeployError::UndeclaredFlag { ref name, .. } if name == "isFeatureXEnabeld"),
        "{typo}"
    );
    assert!(
        matches!(undeclared, DeployError::UndeclaredFlag { .. }),
        "{undeclared}"
    );
    assert!(
        matches!(
            strategy,
            DeployError::NotFound {
                kind: "deployment strategy",
                ..
            }
        ),
        "{strategy}"
    );
    assert!(
        matches!(
            environment,
            DeployError::NotFound {
                kind: "environment",
                ..
            }
        ),
        "{environment}"
    );
    assert!([typo, undeclared, strategy, environment]
        .iter()
        .all(DeployError::is_refusal));
}

fn lockstep(endpoint: &str, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lockstep"));
    command
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS", "15")
        .env("LOCKSTEP_EPSILON_SECONDS", "0");
    command
}

const TARGET_ARGS: [&str; 6] = [
    "--application",
    "lockstep",
    "--environment",
    "test",
    "--profile",
    "flags",
];

#[tokio::test]
async fn deploy_wait_prints_progress_and_exits_0_once_every_changed_flag_is_consistent() {
    let (stack, client) = ministack().await;
    first_deployment(&Deployer::new(client, WINDOW, None)).await;
    let endpoint = stack.endpoint.clone();

    let began = std::time::Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        let mut args = vec!["deploy"];
        args.extend(TARGET_ARGS);
        args.extend([
            "--strategy",
            "lockstep-all-at-once",
            "--set",
            "isFeatureXEnabled=true",
            "--wait",
        ]);
        lockstep(&endpoint, &args).output().unwrap()
    })
    .await
    .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("isFeatureXEnabled=true: changed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("every changed flag is consistent"),
        "{stdout}"
    );
    assert!(stderr.contains("COMPLETE 100%"), "{stderr}");
    assert!(stderr.contains("s to consistentAt"), "{stderr}");
    // consistentAt = T + Δ (0) + P (15 s) + ε (0): the command waited for it.
    assert!(
        began.elapsed() >= Duration::from_secs(14),
        "{:?}",
        began.elapsed()
    );
}

#[tokio::test]
async fn deploy_wait_exits_1_naming_the_rollback_when_the_deployment_is_stopped() {
    let (stack, client) = ministack().await;
    let deployer = Deployer::new(client, WINDOW, None);
    first_deployment(&deployer).await;
    let endpoint = stack.endpoint.clone();
    let child = tokio::task::spawn_blocking(move || {
        let mut args = vec!["deploy"];
        args.extend(TARGET_ARGS);
        args.extend([
            "--strategy",
            "lockstep-linear-25pct-1min",
            "--set",
            "isFeatureXEnabled=true",
            "--wait",
        ]);
        lockstep(&endpoint, &args).output().unwrap()
    });

    let ids = deployer.resolve(&target()).await.unwrap();
    let running = loop {
        if let Some(p) = deployer.in_progress(&ids).await.unwrap() {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stopped = deployer
        .stop(&ids, running.deployment_number)
        .await
        .unwrap();
    let output = child.await.unwrap();

    assert_eq!(stopped.state, "ROLLED_BACK");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("was rolled back by a user (StopDeployment)"),
        "{stderr}"
    );
    let deployed = deployer.deployed_content(&ids).await.unwrap().unwrap().1;
    let doc = lockstep::document::parse(&deployed).unwrap();
    assert!(
        !doc.flags["isFeatureXEnabled"].enabled,
        "the previous content is what is deployed"
    );
}

#[test]
fn a_refused_deploy_exits_2_and_says_why() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (stack, client) = runtime.block_on(ministack());
    runtime.block_on(first_deployment(&Deployer::new(client, WINDOW, None)));

    let mut args = vec!["deploy"];
    args.extend(TARGET_ARGS);
    args.extend([
        "--strategy",
        "lockstep-all-at-once",
        "--set",
        "isFeatureXEnabeld=true",
    ]);
    let output = lockstep(&stack.endpoint, &args).output().unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown flag \"isFeatureXEnabeld\""),
        "{stderr}"
    );
}

/// The feature-flag profile type: `lockstep deploy` stamps the stored format, ministack serves
/// the retrieval format, and the flag library reads the stamps from the metadata flag.
#[tokio::test]
async fn a_feature_flag_profile_is_stamped_in_the_stored_format_and_read_in_the_retrieval_format() {
    use lockstep::appconfig::{AppConfigSource, Target as DataTarget};
    use lockstep::cache::CacheOptions;
    use lockstep::{FlagCache, FlagCatalog, FlagDecl, Overrides, Settings, SystemClock};
    use lockstep_testkit::ministack::appconfigdata_client;
    use std::sync::Arc;

    let (stack, client) = ministack().await;
    let deployer = Deployer::new(client, WINDOW, None);
    let stored = r#"{"version": "1",
      "flags": {"isFeatureXEnabled": {"name": "Journey X"}, "useSubmissionsGsi": {"name": "GSI"}},
      "values": {"isFeatureXEnabled": {"enabled": true}, "useSubmissionsGsi": {"enabled": false}}}"#;
    let mut request = request(Changes::Content(stored.into()), "lockstep-all-at-once");
    request.target.profile = "flags-feature-flags".into();

    let started = deployer.deploy(&request, Utc::now).await.unwrap();
    deployer
        .wait_complete(&started, Duration::from_millis(100))
        .await
        .unwrap();
    let source = AppConfigSource::new(
        appconfigdata_client(&stack.endpoint),
        DataTarget {
            application: "lockstep".into(),
            environment: "test".into(),
            profile: "flags-feature-flags".into(),
        },
    );
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![
            FlagDecl::public("isFeatureXEnabled"),
            FlagDecl::internal("useSubmissionsGsi"),
        ])
        .unwrap(),
        overrides: Overrides::none(),
        settings: Settings {
            poll_interval: Duration::from_secs(15),
            ..Settings::default()
        },
        clock: Arc::new(SystemClock),
    };
    let cache = FlagCache::new(Box::new(source), options).await;
    let view = cache.read().await;

    assert_eq!(view.degraded(), None, "the retrieval form validated");
    assert_eq!(
        view.snapshot().format,
        Some(lockstep::document::Format::FeatureFlags)
    );
    assert_eq!(view.snapshot().version, started.version_label);
    let x = view.status("isFeatureXEnabled").unwrap();
    assert!(x.value);
    assert_eq!(
        x.consistent_at, started.flags["isFeatureXEnabled"].consistent_at,
        "the stamp went through the metadata flag's attributes"
    );
    assert!(!view.is_enabled("useSubmissionsGsi"));
}

#[tokio::test]
async fn a_planned_switch_off_carries_its_drain_and_the_journey_key_survives_deployments() {
    use lockstep::stamp::KeyChange;
    let (_stack, client) = ministack().await;
    let deployer = Deployer::new(client.clone(), WINDOW, None);
    first_deployment(&deployer).await;
    let deploy = |changes: Changes, drain: Option<Duration>| {
        let deployer = &deployer;
        async move {
            let mut r = request(changes, "lockstep-all-at-once");
            r.drain = drain;
            let started = deployer.deploy(&r, Utc::now).await?;
            deployer
                .wait_complete(&started, Duration::from_millis(100))
                .await?;
            Ok::<_, lockstep_cli::deploy::DeployError>(started)
        }
    };
    let hosted = |started: &lockstep_cli::deploy::Started| {
        let client = client.clone();
        let (app, profile, version) = (
            started.resolved.application.clone(),
            started.resolved.profile.clone(),
            started.configuration_version,
        );
        async move {
            let out = client
                .get_hosted_configuration_version()
                .application_id(app)
                .configuration_profile_id(profile)
                .version_number(version)
                .send()
                .await
                .unwrap();
            lockstep::document::parse(out.content().unwrap().as_ref()).unwrap()
        }
    };

    let on = deploy(set(&[("isFeatureXEnabled", true)]), None)
        .await
        .unwrap();
    // A drain on a deployment that switches nothing off is refused, and creates nothing.
    let refused = deploy(
        set(&[("isFeatureXEnabled", true)]),
        Some(Duration::from_secs(300)),
    )
    .await
    .unwrap_err();
    assert!(refused.is_refusal(), "{refused}");
    let off = deploy(
        set(&[("isFeatureXEnabled", false)]),
        Some(Duration::from_secs(300)),
    )
    .await
    .unwrap();

    let x = &off.flags["isFeatureXEnabled"];
    assert_eq!(x.drain_seconds, Some(300));
    let t = x.last_modified_timestamp;
    assert_eq!(
        x.drain_ends_at,
        Some(t + TimeDelta::seconds(15 + 5 + 300)),
        "drainEndsAt = T + Δ + P + ε + drain"
    );
    assert_eq!(
        x.journey_opens_at,
        Some(t + TimeDelta::seconds(15 + 5)),
        "journeyOpensAt = T + Δ + Q + ε"
    );
    assert!(
        off.report().contains("drain 300 s until"),
        "{}",
        off.report()
    );
    assert_eq!(
        (on.journey_key, off.journey_key),
        (KeyChange::Kept, KeyChange::Kept)
    );
    let (before, after) = (hosted(&on).await, hosted(&off).await);
    assert_eq!(
        after.flags["isFeatureXEnabled"].drain,
        Some(Duration::from_secs(300))
    );
    assert_eq!(before.journey_keys.len(), 1);
    assert_eq!(before.journey_keys, after.journey_keys);
}

/// The AWS CLI of the venv ministack runs from (`aws cloudwatch …` against `endpoint`): how a
/// test makes and fires an alarm in ministack's CloudWatch without another SDK.
fn aws(endpoint: &str, args: &[&str]) -> String {
    let ministack = Ministack::find(Path::new(env!("CARGO_MANIFEST_DIR")))
        .expect("ministack must be installed (run ./scripts/venv ministack)");
    let aws = ministack.with_file_name("aws");
    let output = std::process::Command::new(&aws)
        .args(args)
        .args([
            "--endpoint-url",
            endpoint,
            "--region",
            "us-east-1",
            "--output",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", aws.display()));
    assert!(
        output.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn deploy_wait_exits_1_naming_the_alarm_that_rolled_the_deployment_back() {
    let (stack, client) = ministack().await;
    let deployer = Deployer::new(client.clone(), WINDOW, None);
    first_deployment(&deployer).await;
    let ids = deployer.resolve(&target()).await.unwrap();
    let endpoint = stack.endpoint.clone();
    // An alarm in ministack's CloudWatch, watched by the environment...
    let alarm = "feature-x-server-errors";
    aws(
        &endpoint,
        &[
            "cloudwatch",
            "put-metric-alarm",
            "--alarm-name",
            alarm,
            "--namespace",
            "Lockstep",
            "--metric-name",
            "Http5xx",
            "--statistic",
            "Sum",
            "--period",
            "60",
            "--evaluation-periods",
            "1",
            "--threshold",
            "5",
            "--comparison-operator",
            "GreaterThanOrEqualToThreshold",
            "--treat-missing-data",
            "notBreaching",
        ],
    );
    let described: serde_json::Value = serde_json::from_str(&aws(
        &endpoint,
        &["cloudwatch", "describe-alarms", "--alarm-names", alarm],
    ))
    .unwrap();
    let alarm_arn = described["MetricAlarms"][0]["AlarmArn"]
        .as_str()
        .expect("the alarm's ARN")
        .to_owned();
    client
        .update_environment()
        .application_id(&ids.application)
        .environment_id(&ids.environment)
        .monitors(
            aws_sdk_appconfig::types::Monitor::builder()
                .alarm_arn(&alarm_arn)
                .alarm_role_arn("arn:aws:iam::000000000000:role/appconfig-monitor")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // ... and a strategy whose bake time lets the monitors act after the rollout.
    client
        .create_deployment_strategy()
        .name("all-at-once-bake-1min")
        .deployment_duration_in_minutes(0)
        .growth_type(aws_sdk_appconfig::types::GrowthType::Linear)
        .growth_factor(100.0)
        .final_bake_time_in_minutes(1)
        .replicate_to(aws_sdk_appconfig::types::ReplicateTo::None)
        .send()
        .await
        .unwrap();
    let child = {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["deploy"];
            args.extend(TARGET_ARGS);
            args.extend([
                "--strategy",
                "all-at-once-bake-1min",
                "--set",
                "isFeatureXEnabled=true",
                "--wait",
                "--json",
            ]);
            lockstep(&endpoint, &args).output().unwrap()
        })
    };

    // Once the deployment runs, the alarm fires.
    loop {
        if deployer.in_progress(&ids).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    aws(
        &endpoint,
        &[
            "cloudwatch",
            "set-alarm-state",
            "--alarm-name",
            alarm,
            "--state-value",
            "ALARM",
            "--state-reason",
            "feature X fails",
        ],
    );
    let output = child.await.unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "was rolled back by alarm \"{alarm}\" ({alarm_arn})"
        )),
        "{stderr}"
    );
    // With --json, the started deployment, then the rollback as one JSON object.
    let rollback_json = stdout
        .rfind("\n{")
        .map(|at| &stdout[at + 1..])
        .expect("a JSON object after the started deployment's");
    let rollback: serde_json::Value = serde_json::from_str(rollback_json).unwrap();
    assert_eq!(rollback["state"], "ROLLED_BACK");
    assert_eq!(rollback["triggeredBy"], "CLOUDWATCH_ALARM");
    assert_eq!(rollback["rolledBackBy"]["kind"], "alarm");
    assert_eq!(rollback["rolledBackBy"]["alarmName"], alarm);
    assert_eq!(rollback["rolledBackBy"]["alarmArn"], alarm_arn.as_str());
    let deployed = deployer.deployed_content(&ids).await.unwrap().unwrap().1;
    let doc = lockstep::document::parse(&deployed).unwrap();
    assert!(
        !doc.flags["isFeatureXEnabled"].enabled,
        "the previous content is what is deployed"
    );
}

/// Deploys `content` (AllAtOnce) and waits for the deployment to complete.
async fn deployed_and_complete(deployer: &Deployer, content: &serde_json::Value) -> Started {
    let started = deployer
        .deploy(
            &request(
                Changes::Content(content.to_string().into_bytes()),
                "lockstep-all-at-once",
            ),
            Utc::now,
        )
        .await
        .unwrap();
    while deployer
        .progress(&started.resolved, started.deployment_number)
        .await
        .unwrap()
        .state
        != "COMPLETE"
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    started
}

#[tokio::test]
async fn deploy_split_widens_a_rollout_in_one_command_and_keeps_the_step_before_for_per_user_consistency(
) {
    let (stack, client) = ministack().await;
    let deployer = Deployer::new(client, WINDOW, None);
    let rollout = serde_json::json!({"default": false, "rules": {"rollout": {"split": [
        {"variant": "on", "value": true, "weight": 25},
        {"variant": "off", "value": false, "weight": 75}]}}});
    let content = serde_json::json!({"checkout": rollout, "isFeatureXEnabled": false});
    let started = deployed_and_complete(&deployer, &content).await;
    let endpoint = stack.endpoint.clone();
    let run = move |split: &'static str| {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["deploy"];
            args.extend(TARGET_ARGS);
            args.extend(["--strategy", "lockstep-all-at-once", "--split", split]);
            lockstep(&endpoint, &args).output().unwrap()
        })
    };

    let refused = run("isFeatureXEnabled=50").await.unwrap();
    let widened = run("checkout=50").await.unwrap();

    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"isFeatureXEnabled\" is not defined by rules"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&widened.stdout);
    let stderr = String::from_utf8_lossy(&widened.stderr);
    assert!(widened.status.success(), "{stdout}\n{stderr}");
    let deployed = deployer
        .deployed_content(&started.resolved)
        .await
        .unwrap()
        .unwrap()
        .1;
    let deployed: serde_json::Value = serde_json::from_slice(&deployed).unwrap();
    let split = &deployed["checkout"]["rules"]["rollout"]["split"];
    assert_eq!(split[0]["weight"], 5000);
    assert_eq!(split[1]["weight"], 5000);
    assert_eq!(
        deployed["lockstepMetadata"]["flags"]["checkout"]["previous"][0]["value"], rollout,
        "the 25 % step is kept: users already in stay consistent"
    );
    assert_eq!(deployed["isFeatureXEnabled"], false);
}

#[tokio::test]
async fn deploy_ramp_with_wait_says_when_the_last_users_journey_opens_and_hold_keeps_everyone_in() {
    let (stack, client) = ministack().await;
    let deployer = Deployer::new(client, WINDOW, None);
    let rollout = serde_json::json!({"default": false, "rules": {"rollout": {"split": [
        {"variant": "on", "value": true, "weight": 25},
        {"variant": "off", "value": false, "weight": 75}]}}});
    let content = serde_json::json!({"checkout": rollout});
    let started = deployed_and_complete(&deployer, &content).await;
    let endpoint = stack.endpoint.clone();
    let run = move |args: Vec<&'static str>| {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["deploy"];
            all.extend(TARGET_ARGS);
            all.extend(["--strategy", "lockstep-all-at-once"]);
            all.extend(args);
            lockstep(&endpoint, &all).output().unwrap()
        })
    };
    let deployed = || async {
        let content = deployer
            .deployed_content(&started.resolved)
            .await
            .unwrap()
            .unwrap()
            .1;
        serde_json::from_slice::<serde_json::Value>(&content).unwrap()
    };

    let before = Utc::now();
    let ramped = run(vec!["--ramp", "checkout=100/10m", "--wait"])
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&ramped.stdout);
    let stderr = String::from_utf8_lossy(&ramped.stderr);
    assert!(ramped.status.success(), "{stdout}\n{stderr}");
    let content = deployed().await;
    let rule = &content["checkout"]["rules"]["rollout"];
    assert_eq!(rule["split"][0]["weight"], 2500, "{rule}");
    assert_eq!(rule["ramp"]["weight"], 10_000);
    let instant = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    let (start, end) = (
        instant(&rule["ramp"]["start"]),
        instant(&rule["ramp"]["end"]),
    );
    let stamp = instant(&content["lockstepMetadata"]["flags"]["checkout"]["lastModifiedTimestamp"]);
    assert!(stamp >= before);
    // It starts when every instance holds it: T + Δ (0) + P (15 s) + ε (0).
    assert_eq!(start, stamp + chrono::TimeDelta::seconds(15));
    assert_eq!(end, start + chrono::TimeDelta::minutes(10));
    let at = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert!(
        stdout.contains(&format!(
            "checkout: newly included users' journeys open at {}",
            at(stamp + chrono::TimeDelta::seconds(15))
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "the ramp lets users in from {} to {}, and the last user's journey opens at {}",
            at(start),
            at(end),
            at(end)
        )),
        "{stdout}"
    );
    assert_eq!(
        content["lockstepMetadata"]["flags"]["checkout"]["previous"][0]["value"], rollout,
        "the 25 % step is kept: users already in stay consistent"
    );

    // Held: the split keeps everyone the ramp let in by the time every instance holds the hold.
    let held = run(vec!["--hold", "checkout"]).await.unwrap();
    assert!(
        held.status.success(),
        "{}",
        String::from_utf8_lossy(&held.stderr)
    );
    let content = deployed().await;
    let rule = &content["checkout"]["rules"]["rollout"];
    assert_eq!(rule.get("ramp"), None);
    let share = rule["split"][0]["weight"].as_u64().unwrap();
    let hold_stamp =
        instant(&content["lockstepMetadata"]["flags"]["checkout"]["lastModifiedTimestamp"]);
    let everywhere = hold_stamp + chrono::TimeDelta::seconds(15);
    let elapsed = (everywhere - start).num_milliseconds().clamp(0, 600_000) as u64;
    assert_eq!(
        share,
        2500 + (7500 * elapsed / 600_000 * 10_000).div_ceil(10_000)
    );
}
