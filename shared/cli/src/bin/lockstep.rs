//! `lockstep`: the pipeline command.
//!
//! ```text
//! lockstep deploy --application APP --environment ENV --profile PROFILE --strategy STRATEGY
//!                 (--set FLAG=true|false ... | --split FLAG=PERCENT ... | --ramp FLAG=PERCENT/DURATION ...
//!                  | --hold FLAG ... | --content FILE) [--allow-new-flags]
//!                 [--description TEXT] [--wait] [--json]
//! lockstep eval --content FILE --flag NAME [--context JSON] [--at RFC3339]
//! lockstep validate --content FILE
//! ```
//!
//! Works against AWS with the default credential chain, and against a local AppConfig with
//! `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_APPCONFIG`). P and ε for the reported `consistentAt`
//! come from `AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS` and `LOCKSTEP_EPSILON_SECONDS`, as
//! the functions read them. Exit 0 when started (with `--wait`: when every changed flag is
//! consistent; it then says when newly included users' journeys open, and for a ramp when the
//! last user's does), 2 when refused with nothing created (unknown names, undeclared flags, a
//! deployment already in progress, content that does not validate), 1 when AppConfig failed or
//! the deployment was rolled back. A rollback names who did it, from the deployment's event
//! log: the alarm (its name, from the ARN) or a user's `StopDeployment`; with `--json` it is
//! also printed as a JSON object (`deploymentNumber`, `state`, `rolledBackBy`: `{"kind":
//! "alarm", "alarmName", "alarmArn"}` or `{"kind": "user"}`, ...).
//!
//! `eval` prints one JSON object, `{"value", "reason", "variant"}` (and `changesAt` when a
//! schedule or a ramp next changes the caller's value), for the caller `--context`
//! (`{"targetingKey": …, <attributes>…}`, default `{}`) at `--at` (default now); `validate`
//! prints what the content holds. Both exit 0, or 2 with a message naming the flag and the rule
//! when the content does not validate (nothing is deployed either way).

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use lockstep::targeted::Context;
use lockstep::Settings;
use lockstep_cli::deploy::{
    parse_ramp, parse_share, Changes, DeployError, Deployer, RampTo, Request, Target,
};
use lockstep_cli::eval;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "lockstep", about = "Lockstep's pipeline command", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stamp and start an AppConfig deployment, with Δ from the strategy itself.
    Deploy(DeployArgs),
    /// Evaluate one flag of a content file for one caller, as an instance would.
    Eval(EvalArgs),
    /// Check a content file as an instance would, without deploying it.
    Validate(ValidateArgs),
}

#[derive(Args)]
struct EvalArgs {
    /// The content: a Lockstep document (either format) or a Powertools feature document.
    #[arg(long, value_name = "FILE")]
    content: PathBuf,
    /// The flag to evaluate.
    #[arg(long)]
    flag: String,
    /// The caller: a JSON object {"targetingKey": …, <attributes>…}.
    #[arg(long, value_name = "JSON", value_parser = parse_context, default_value = "{}")]
    context: Context,
    /// The moment to evaluate at, for time-based rules (RFC 3339); default now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_at)]
    at: Option<DateTime<Utc>>,
}

#[derive(Args)]
struct ValidateArgs {
    /// The content: a Lockstep document (either format) or a Powertools feature document.
    #[arg(long, value_name = "FILE")]
    content: PathBuf,
}

fn parse_context(value: &str) -> Result<Context, String> {
    eval::parse_context(value).map_err(|e| e.to_string())
}

fn parse_at(value: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| format!("{value:?}: {e}"))
}

#[derive(Args)]
struct DeployArgs {
    /// The AppConfig application (name or id).
    #[arg(long)]
    application: String,
    /// The environment (name or id).
    #[arg(long)]
    environment: String,
    /// The configuration profile (name or id).
    #[arg(long)]
    profile: String,
    /// The deployment strategy (name or id); Δ is its duration.
    #[arg(long)]
    strategy: String,
    /// A flag to set in the content deployed now (Freeform), as FLAG=true or FLAG=false.
    #[arg(long = "set", value_name = "FLAG=BOOL", value_parser = parse_set, conflicts_with = "content")]
    set: Vec<(String, bool)>,
    /// A rollout widened or narrowed: the share of users a flag's split serves `true`, as
    /// FLAG=PERCENT (`25`, `0.5`); the flag must be defined by rules with one two-variant
    /// boolean split. Users already in stay in, and stay consistent.
    #[arg(long = "split", value_name = "FLAG=PERCENT", value_parser = parse_split, conflicts_with_all = ["content", "set"])]
    split: Vec<(String, u32)>,
    /// A ramp started: a flag's `true` share grows from now's to PERCENT over DURATION
    /// (`100/2h`), from when every instance holds the deployment; each user enters at their own
    /// instant, with no deployment per step. The flag's split must list its `true` variant
    /// first.
    #[arg(long = "ramp", value_name = "FLAG=PERCENT/DURATION", value_parser = parse_ramp_arg, conflicts_with_all = ["content", "set", "split"])]
    ramp: Vec<(String, RampTo)>,
    /// A ramp held: the flag's split set to the share its ramp reaches when every instance
    /// holds the deployment (rounded up), so the users it let in stay in.
    #[arg(long = "hold", value_name = "FLAG", conflicts_with_all = ["content", "set", "split", "ramp"])]
    hold: Vec<String>,
    /// A whole content file to deploy instead (either format).
    #[arg(long, value_name = "FILE")]
    content: Option<PathBuf>,
    /// Allow --set to add a flag the deployed content does not have yet.
    #[arg(long)]
    allow_new_flags: bool,
    /// A description for the deployment.
    #[arg(long)]
    description: Option<String>,
    /// Let journeys in flight finish when this deployment switches a flag off: `300`, `300s`,
    /// `5m`, `1h` (at most 24 h). Without it, switching off is a kill switch.
    #[arg(long, value_name = "DURATION", value_parser = parse_drain)]
    drain: Option<Duration>,
    /// Make a new journey key to sign tokens with; the current one still verifies tokens.
    #[arg(long)]
    rotate_journey_key: bool,
    /// Follow the deployment until every changed flag is consistent.
    #[arg(long)]
    wait: bool,
    /// Print the started deployment as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_drain(value: &str) -> Result<Duration, String> {
    lockstep::settings::parse_duration_text(value).map_err(|why| format!("{value:?}: {why}"))
}

fn parse_split(value: &str) -> Result<(String, u32), String> {
    match value.split_once('=') {
        Some((name, share)) if !name.is_empty() => Ok((name.to_owned(), parse_share(share)?)),
        _ => Err(format!("{value:?}: expected FLAG=PERCENT")),
    }
}

fn parse_ramp_arg(value: &str) -> Result<(String, RampTo), String> {
    match value.split_once('=') {
        Some((name, ramp)) if !name.is_empty() => Ok((name.to_owned(), parse_ramp(ramp)?)),
        _ => Err(format!("{value:?}: expected FLAG=PERCENT/DURATION")),
    }
}

fn parse_set(value: &str) -> Result<(String, bool), String> {
    match value.split_once('=') {
        Some((name, "true")) if !name.is_empty() => Ok((name.to_owned(), true)),
        Some((name, "false")) if !name.is_empty() => Ok((name.to_owned(), false)),
        _ => Err(format!("{value:?}: expected FLAG=true or FLAG=false")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (name, result) = match Cli::parse().command {
        Command::Deploy(args) => ("deploy", deploy(args).await),
        Command::Eval(args) => ("eval", run_eval(&args)),
        Command::Validate(args) => ("validate", run_validate(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("lockstep {name}: {message}");
            ExitCode::from(code)
        }
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, (u8, String)> {
    std::fs::read(path).map_err(|e| (2, format!("{}: {e}", path.display())))
}

fn refused(error: eval::EvalError) -> (u8, String) {
    (2, lockstep::error_chain(&error))
}

fn run_eval(args: &EvalArgs) -> Result<(), (u8, String)> {
    let content = read(&args.content)?;
    let at = args.at.unwrap_or_else(Utc::now);
    let answer = eval::evaluate(&content, &args.flag, &args.context, at).map_err(refused)?;
    println!("{}", serde_json::to_string(&answer).expect("serialises"));
    Ok(())
}

fn run_validate(args: &ValidateArgs) -> Result<(), (u8, String)> {
    let content = read(&args.content)?;
    let (_, verdict) = eval::validate(&content).map_err(refused)?;
    println!("{}", serde_json::to_string(&verdict).expect("serialises"));
    Ok(())
}

async fn deploy(args: DeployArgs) -> Result<(), (u8, String)> {
    let settings = Settings::from_env().map_err(|e| (2, e.to_string()))?;
    let changes = match (&args.content, args.set.is_empty()) {
        (Some(path), _) => Changes::Content(
            std::fs::read(path).map_err(|e| (2, format!("{}: {e}", path.display())))?,
        ),
        (None, _) if !args.split.is_empty() => {
            Changes::Split(args.split.iter().cloned().collect::<BTreeMap<_, _>>())
        }
        (None, _) if !args.ramp.is_empty() => {
            Changes::Ramp(args.ramp.iter().cloned().collect::<BTreeMap<_, _>>())
        }
        (None, _) if !args.hold.is_empty() => Changes::Hold(args.hold.iter().cloned().collect()),
        (None, _) => Changes::Set(args.set.iter().cloned().collect::<BTreeMap<_, _>>()),
    };
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let deployer = Deployer::new(
        aws_sdk_appconfig::Client::new(&aws),
        settings.window(),
        None,
    );
    let request = Request {
        target: Target {
            application: args.application,
            environment: args.environment,
            profile: args.profile,
        },
        changes,
        strategy: args.strategy,
        description: args.description,
        allow_new_flags: args.allow_new_flags,
        drain: args.drain,
        rotate_journey_key: args.rotate_journey_key,
    };
    let failed = |e: DeployError| {
        (
            if e.is_refusal() { 2 } else { 1 },
            lockstep::error_chain(&e),
        )
    };
    let started = deployer
        .deploy(&request, chrono::Utc::now)
        .await
        .map_err(failed)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&started).expect("serialises")
        );
    } else {
        println!("{}", started.report());
    }
    if args.wait {
        let done = deployer
            .wait(
                &started,
                Duration::from_secs(1),
                chrono::Utc::now,
                |p, left| {
                    let left = left
                        .map(|l| format!("{} s to consistentAt", l.num_seconds().max(0)))
                        .unwrap_or_else(|| "no flag changed".into());
                    eprintln!(
                        "deployment {}: {} {:.0}% ({left})",
                        p.deployment_number, p.state, p.percentage_complete
                    );
                },
            )
            .await
            .map_err(|e| {
                if let (true, DeployError::RolledBack { rollback, .. }) = (args.json, &e) {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(rollback).expect("serialises")
                    );
                }
                failed(e)
            })?;
        println!(
            "deployment {} {}: every changed flag is consistent",
            done.deployment_number, done.state
        );
        for line in started.journeys_report() {
            println!("{line}");
        }
    }
    Ok(())
}
