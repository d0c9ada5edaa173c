//! Simulated AppConfig deployments on the local flags file, for `scripts/deploy-local` (through
//! the `lockstep-deploy-local` command) and the fleet view's Deploy button (`POST
//! /local/deployments`): one implementation behind both.
//!
//! A deployment takes the file's current flags, applies the requested values, and stamps the
//! result with [`lockstep::stamp::stamp`] (the code behind the AppConfig extension and
//! `lockstep-stamp`), with the file's current content as the previously deployed one: a flag whose
//! value does not change keeps its stamp, a changed one gets T = now and Δ = the chosen duration.
//! The new content replaces the file atomically (a temporary file renamed over it), so a running
//! instance reads either the old version or the new one, never half a file. Nothing is written
//! when anything is refused.

use chrono::{DateTime, SecondsFormat, Utc};
use lockstep::catalog::{FlagCatalog, METADATA_KEY};
use lockstep::consistency::{consistent_at, Window, MAX_DEPLOYMENT_DURATION};
use lockstep::local::LocalDirSource;
use lockstep::stamp::{stamp, Change, StampError};
use lockstep::{ConfigSource, Fetched};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// What to deploy: flag values and the strategy's duration Δ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRequest {
    /// The flags to set; every other flag keeps its value (and its stamp).
    pub flags: BTreeMap<String, bool>,
    /// Δ, whole seconds.
    pub duration: Duration,
}

impl DeployRequest {
    /// Checks the request against the declared flags: at least one flag, every one declared,
    /// and a duration AppConfig would accept.
    pub fn new(
        flags: BTreeMap<String, bool>,
        duration: Duration,
        catalog: &FlagCatalog,
    ) -> Result<Self, DeployError> {
        if flags.is_empty() {
            return Err(DeployError::NoFlags);
        }
        if let Some(unknown) = flags.keys().find(|name| catalog.get(name).is_none()) {
            return Err(DeployError::UnknownFlag {
                name: unknown.clone(),
                declared: catalog
                    .flags()
                    .iter()
                    .map(|f| f.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if duration > MAX_DEPLOYMENT_DURATION {
            return Err(DeployError::Duration);
        }
        Ok(Self { flags, duration })
    }
}

/// Why a deployment was refused or failed; nothing was written in either case.
#[derive(Debug, Error)]
pub enum DeployError {
    /// No flag to set.
    #[error("name at least one flag to deploy")]
    NoFlags,
    /// A flag the product does not declare.
    #[error("unknown flag {name:?}; declared flags: {declared}")]
    UnknownFlag {
        /// The name given.
        name: String,
        /// The declared names.
        declared: String,
    },
    /// Δ over AppConfig's 24 hours.
    #[error("the deployment duration must be between 0 and 86400 seconds")]
    Duration,
    /// The current file is not a JSON object this command can edit (a fault of the machine's
    /// state, not of the request: the path is for logs, never for a response).
    #[error("the current flags file cannot be edited: {why}")]
    Current {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// Stamping refused the new content.
    #[error(transparent)]
    Stamp(#[from] StampError),
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl DeployError {
    /// True when the caller's request is at fault (400), false for the machine's (500).
    pub fn is_bad_request(&self) -> bool {
        !matches!(self, DeployError::Io { .. } | DeployError::Current { .. })
    }
}

/// One flag after a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployedFlag {
    /// Its value.
    pub value: bool,
    /// `new`, `changed` or `kept`.
    pub change: Change,
    /// T: its stamp.
    pub last_modified_timestamp: DateTime<Utc>,
    /// Δ, seconds.
    pub deployment_duration_seconds: u64,
    /// `T + Δ + P + ε` with the runner's P and ε: when every instance serves it.
    pub consistent_at: Option<DateTime<Utc>>,
}

/// What a deployment wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// The file written (for the command line; not sent in responses).
    #[serde(skip)]
    pub file: String,
    /// T: when the deployment started.
    pub last_modified_timestamp: DateTime<Utc>,
    /// Δ, seconds.
    pub deployment_duration_seconds: u64,
    /// Every flag in the file.
    pub flags: BTreeMap<String, DeployedFlag>,
}

impl Deployment {
    /// One line per flag, as `lockstep-stamp` prints them.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for (name, flag) in &self.flags {
            let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
            out.push_str(&format!(
                "{name}={}: {} (lastModifiedTimestamp {}, deploymentDurationSeconds {}, consistentAt {})\n",
                flag.value,
                flag.change,
                at(flag.last_modified_timestamp),
                flag.deployment_duration_seconds,
                flag.consistent_at.map(at).unwrap_or_else(|| "-".into()),
            ));
        }
        out.push_str(&format!("wrote {}", self.file));
        out
    }
}

/// The flags file the local runner reads in `dir` (AppConfig Agent local-development naming);
/// `<application>:<environment>:<profile>.json` when there is none yet.
pub fn flags_file(dir: &Path) -> PathBuf {
    let target = lockstep::init::local_target();
    let path = LocalDirSource::new(dir, target.clone()).path();
    if path.exists() {
        path
    } else {
        dir.join(format!("{}.json", LocalDirSource::file_name(&target)))
    }
}

/// Deploys `request` to the flags file in `dir`, starting at `at`; `window` (the runner's P and
/// ε) only computes the reported `consistentAt`.
pub fn deploy(
    dir: &Path,
    request: &DeployRequest,
    at: DateTime<Utc>,
    window: Window,
) -> Result<Deployment, DeployError> {
    let path = flags_file(dir);
    let file = path.display().to_string();
    let previous = match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(DeployError::Io { path: file, source }),
    };
    let next =
        with_values(previous.as_deref(), &request.flags).map_err(|why| DeployError::Current {
            path: file.clone(),
            why,
        })?;
    let stamped = stamp(&next, previous.as_deref(), at, request.duration)?;
    write_atomically(&path, &stamped.content).map_err(|source| DeployError::Io {
        path: file.clone(),
        source,
    })?;
    let values = lockstep::document::parse(&stamped.content)
        .map(|doc| doc.flags)
        .unwrap_or_default();
    let flags = stamped
        .flags
        .iter()
        .map(|(name, (change, s))| {
            let flag = DeployedFlag {
                value: values.get(name).is_some_and(|f| f.enabled),
                change: *change,
                last_modified_timestamp: s.at,
                deployment_duration_seconds: s.deployment_duration.as_secs(),
                consistent_at: consistent_at(Some(*s), false, window),
            };
            (name.clone(), flag)
        })
        .collect();
    // Stamps are written with millisecond precision.
    let at = DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at);
    tracing::info!(
        file = %file,
        flags = ?request.flags,
        duration_s = request.duration.as_secs(),
        at = %at,
        path = "local_deployment",
        "local deployment written"
    );
    Ok(Deployment {
        file,
        last_modified_timestamp: at,
        deployment_duration_seconds: request.duration.as_secs(),
        flags,
    })
}

/// One flag of the file as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentFlag {
    /// Its value.
    pub value: bool,
    /// T, when stamped.
    pub last_modified_timestamp: Option<DateTime<Utc>>,
    /// Δ, seconds, when stamped.
    pub deployment_duration_seconds: Option<u64>,
    /// `T + Δ + P + ε`, when stamped.
    pub consistent_at: Option<DateTime<Utc>>,
}

/// The flags file as it is now: what a freshly started instance would load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Current {
    /// The file.
    pub file: String,
    /// Its version label, as instances report it.
    pub configuration_version: Option<String>,
    /// The profile stamp T.
    pub last_modified_timestamp: Option<DateTime<Utc>>,
    /// Every flag in it.
    pub flags: BTreeMap<String, CurrentFlag>,
    /// Why it cannot be read or would be rejected, if so.
    pub error: Option<String>,
}

/// Reads the flags file through the same source and parser the instances use.
pub async fn current(dir: &Path, window: Window) -> Current {
    let mut source = LocalDirSource::new(dir, lockstep::init::local_target());
    let mut current = Current {
        file: source.path().display().to_string(),
        configuration_version: None,
        last_modified_timestamp: None,
        flags: BTreeMap::new(),
        error: None,
    };
    let content = match source.fetch(Utc::now()).await {
        Ok(Fetched {
            content: Some(content),
            ..
        }) => content,
        Ok(_) => return current,
        Err(e) => {
            current.error = Some(e.to_string());
            return current;
        }
    };
    current.configuration_version = Some(content.version);
    match lockstep::document::parse(&content.bytes) {
        Ok(doc) => {
            current.last_modified_timestamp = doc.profile_stamp.map(|s| s.at);
            current.flags = doc
                .flags
                .into_iter()
                .map(|(name, flag)| {
                    let flag = CurrentFlag {
                        value: flag.enabled,
                        last_modified_timestamp: flag.stamp.map(|s| s.at),
                        deployment_duration_seconds: flag
                            .stamp
                            .map(|s| s.deployment_duration.as_secs()),
                        consistent_at: consistent_at(flag.stamp, false, window),
                    };
                    (name, flag)
                })
                .collect();
        }
        Err(e) => current.error = Some(e.to_string()),
    }
    current
}

/// The next content: the current Freeform document with the requested values (stamping then
/// refuses anything that is not a Freeform flag).
fn with_values(current: Option<&[u8]>, values: &BTreeMap<String, bool>) -> Result<Vec<u8>, String> {
    let mut root = match current {
        None => Map::new(),
        Some(bytes) => match serde_json::from_slice(bytes) {
            Ok(Value::Object(root)) => root,
            Ok(_) => return Err("the flags file must hold a JSON object".into()),
            Err(e) => return Err(format!("the flags file is not JSON: {e}")),
        },
    };
    for (name, value) in values {
        root.insert(name.clone(), Value::Bool(*value));
    }
    // Stamping writes the metadata anew from the previous content.
    root.remove(METADATA_KEY);
    Ok(serde_json::to_vec_pretty(&Value::Object(root)).expect("a JSON value serialises"))
}

/// Writes `bytes` next to `path` and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        Window {
            poll_interval: Duration::from_secs(15),
            epsilon: Duration::from_secs(5),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lockstep-deploy-{name}-{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn request(flags: &[(&str, bool)], seconds: u64) -> DeployRequest {
        DeployRequest::new(
            flags.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            Duration::from_secs(seconds),
            &lockstep_sample::product::catalog(),
        )
        .unwrap()
    }

    #[test]
    fn a_changed_flag_gets_the_new_stamp_and_an_unchanged_one_keeps_its_own() {
        let dir = temp_dir("keep");
        std::fs::write(
            dir.join("lockstep:local:flags.json"),
            r#"{"isFeatureXEnabled": false, "useSubmissionsGsi": true,
                "lockstepMetadata": {"lastModifiedTimestamp": "2026-01-01T00:00:00Z"}}"#,
        )
        .unwrap();

        let deployment = deploy(
            &dir,
            &request(&[("isFeatureXEnabled", true)], 10),
            at("2026-11-21T10:00:00Z"),
            window(),
        )
        .unwrap();

        let feature = &deployment.flags["isFeatureXEnabled"];
        assert_eq!((feature.value, feature.change), (true, Change::Changed));
        assert_eq!(feature.last_modified_timestamp, at("2026-11-21T10:00:00Z"));
        assert_eq!(feature.consistent_at, Some(at("2026-11-21T10:00:30Z")));
        let gsi = &deployment.flags["useSubmissionsGsi"];
        assert_eq!((gsi.value, gsi.change), (true, Change::Kept));
        assert_eq!(gsi.last_modified_timestamp, at("2026-01-01T00:00:00Z"));
        let doc =
            lockstep::document::parse(&std::fs::read(flags_file(&dir)).unwrap()).expect("valid");
        assert!(doc.flags["isFeatureXEnabled"].enabled);
        assert_eq!(
            doc.profile_stamp.map(|s| s.at),
            Some(at("2026-11-21T10:00:00Z"))
        );
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_is_created_with_every_flag_stamped_now() {
        let dir = temp_dir("missing");

        let deployment = deploy(
            &dir,
            &request(&[("isFeatureXEnabled", false)], 0),
            at("2026-11-21T10:00:00Z"),
            window(),
        )
        .unwrap();

        assert_eq!(deployment.flags["isFeatureXEnabled"].change, Change::New);
        assert!(flags_file(&dir).ends_with("lockstep:local:flags.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn undeclared_flags_empty_requests_and_absurd_durations_are_refused() {
        let catalog = lockstep_sample::product::catalog();
        let one = |name: &str| BTreeMap::from([(name.to_owned(), true)]);

        let unknown = DeployRequest::new(one("isFeatureYEnabled"), Duration::ZERO, &catalog);
        let empty = DeployRequest::new(BTreeMap::new(), Duration::ZERO, &catalog);
        let long = DeployRequest::new(
            one("isFeatureXEnabled"),
            MAX_DEPLOYMENT_DURATION + Duration::from_secs(1),
            &catalog,
        );

        assert!(matches!(unknown, Err(DeployError::UnknownFlag { .. })));
        assert!(matches!(empty, Err(DeployError::NoFlags)));
        assert!(matches!(long, Err(DeployError::Duration)));
    }

    #[test]
    fn a_file_that_is_not_a_json_object_is_left_untouched() {
        let dir = temp_dir("broken");
        let file = dir.join("lockstep:local:flags.json");
        std::fs::write(&file, "[1, 2]").unwrap();

        let result = deploy(
            &dir,
            &request(&[("isFeatureXEnabled", true)], 0),
            at("2026-11-21T10:00:00Z"),
            window(),
        );

        assert!(matches!(result, Err(DeployError::Current { .. })));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "[1, 2]");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
