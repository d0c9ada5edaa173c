//! The local AppConfig: `ministack` (PyPI, MIT), the AppConfig control plane and AppConfigData
//! with deployment strategies, for the local runner and the tests.
//!
//! It runs from the project's venv (`LOCKSTEP_MINISTACK_VENV`, default `.venv-ministack`;
//! `./scripts/run` and `./scripts/test` create it with `scripts/venv ministack`, pinned), on a free port bound to 127.0.0.1
//! (`GATEWAY_PORT`, `BIND_HOST`), with only the services Lockstep needs
//! (`SERVICES=appconfig,appconfigdata,cloudwatch`: CloudWatch holds the template's alarms, the
//! AppConfig environment's monitors). It is stopped when dropped. A missing venv or a
//! ministack that does not answer is an error that says what to do, never a silent fallback.

use crate::local_service::{free_port, local_config, wait_until_answering};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use thiserror::Error;

/// The ministack version `scripts/venv` installs.
pub const VERSION: &str = "1.5.33";

/// Why ministack could not be started.
#[derive(Debug, Error)]
pub enum MinistackError {
    /// The venv holding ministack was not found.
    #[error("ministack was not found at {0}: run ./scripts/venv ministack (./scripts/run and ./scripts/test do), or set LOCKSTEP_MINISTACK to its executable")]
    Missing(String),
    /// It could not be spawned.
    #[error("could not start ministack")]
    Spawn(#[source] std::io::Error),
    /// It exited or never answered.
    #[error("ministack did not answer on {endpoint} within {seconds} s")]
    NotAnswering {
        /// Where it should have answered.
        endpoint: String,
        /// How long it was given.
        seconds: u64,
    },
    /// No free port.
    #[error("no free local port")]
    Port(#[source] std::io::Error),
}

/// A running ministack; stopped when dropped.
#[derive(Debug)]
pub struct Ministack {
    child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Ministack {
    /// The ministack executable for a project under `start`: `LOCKSTEP_MINISTACK` when set, else
    /// `<root>/<LOCKSTEP_MINISTACK_VENV or .venv-ministack>/bin/ministack` in the nearest
    /// ancestor that has it.
    pub fn find(start: &Path) -> Result<PathBuf, MinistackError> {
        if let Some(path) = std::env::var_os("LOCKSTEP_MINISTACK").filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(MinistackError::Missing(path.display().to_string()))
            };
        }
        let venv = std::env::var_os("LOCKSTEP_MINISTACK_VENV")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".venv-ministack"));
        let relative = venv.join("bin/ministack");
        if relative.is_absolute() {
            return if relative.is_file() {
                Ok(relative)
            } else {
                Err(MinistackError::Missing(relative.display().to_string()))
            };
        }
        start
            .ancestors()
            .map(|dir| dir.join(&relative))
            .find(|path| path.is_file())
            .ok_or_else(|| MinistackError::Missing(start.join(&relative).display().to_string()))
    }

    /// Starts ministack for the project under `start` on a free port of 127.0.0.1 and waits
    /// until it answers.
    pub async fn start_from(start: &Path) -> Result<Self, MinistackError> {
        let executable = Self::find(start)?;
        Self::start(&executable, 0).await
    }

    /// Starts `executable` on `port` (0: a free one) and waits until it answers (a second or
    /// two).
    pub async fn start(executable: &Path, port: u16) -> Result<Self, MinistackError> {
        let port = if port == 0 {
            free_port().map_err(MinistackError::Port)?
        } else {
            port
        };
        let child = tokio::process::Command::new(executable)
            .env("GATEWAY_PORT", port.to_string())
            .env("BIND_HOST", "127.0.0.1")
            .env("SERVICES", "appconfig,appconfigdata,cloudwatch")
            .env("LOG_LEVEL", "WARNING")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(MinistackError::Spawn)?;
        let stack = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        stack
            .wait_until_ready(port, Duration::from_secs(60))
            .await?;
        Ok(stack)
    }

    async fn wait_until_ready(&self, port: u16, limit: Duration) -> Result<(), MinistackError> {
        let every = Duration::from_millis(100);
        let probe = || health(port);
        if wait_until_answering("ministack", &self.endpoint, limit, every, probe).await {
            return Ok(());
        }
        Err(MinistackError::NotAnswering {
            endpoint: self.endpoint.clone(),
            seconds: limit.as_secs(),
        })
    }

    /// Stops it now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// One `GET /_ministack/health` over a plain TCP connection: 200 means ready.
async fn health(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request = "GET /_ministack/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// An AppConfig control-plane client for a local endpoint, with dummy credentials.
pub fn appconfig_client(endpoint: &str) -> aws_sdk_appconfig::Client {
    aws_sdk_appconfig::Client::from_conf(local_config!(aws_sdk_appconfig, endpoint).build())
}

/// An AppConfigData client for a local endpoint with Lockstep's client settings
/// (`lockstep::appconfig::configure`: no SDK retries), with dummy credentials.
pub fn appconfigdata_client(endpoint: &str) -> aws_sdk_appconfigdata::Client {
    let builder = local_config!(aws_sdk_appconfigdata, endpoint);
    aws_sdk_appconfigdata::Client::from_conf(lockstep::appconfig::configure(builder).build())
}

/// A local strategy: name, duration in minutes, growth type, growth factor, final bake time in
/// minutes. Without bake time a local deployment is `COMPLETE` when its duration ends.
pub type StrategySpec = (&'static str, i32, &'static str, f32, i32);

/// The strategies a local run creates (AppConfig's predefined ones bake for 1 to 30 minutes).
/// The first is the default: all at once, no bake. The last bakes for 2 minutes after an
/// all-at-once rollout, so the environment's monitors (the template's alarms) can still roll it
/// back once every instance has the new value (docs/deploy.md, "Alarms and rollback").
pub const LOCAL_STRATEGIES: [StrategySpec; 4] = [
    ("lockstep-all-at-once", 0, "LINEAR", 100.0, 0),
    ("lockstep-linear-25pct-1min", 1, "LINEAR", 25.0, 0),
    ("lockstep-exponential-2min", 2, "EXPONENTIAL", 12.5, 0),
    ("lockstep-all-at-once-bake-2min", 0, "LINEAR", 100.0, 2),
];

/// What [`create_layout`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The application's id.
    pub application: String,
    /// The environment's id.
    pub environment: String,
    /// The Freeform profile's id.
    pub profile: String,
    /// The feature-flag profile's id (`AWS.AppConfig.FeatureFlags`).
    pub feature_flags_profile: String,
}

/// Why the local AppConfig layout could not be created.
#[derive(Debug, Error)]
#[error("creating the local AppConfig layout failed ({operation})")]
pub struct LayoutError {
    /// The operation that failed.
    pub operation: &'static str,
    /// The SDK error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// Creates application `application`, environment `environment`, a Freeform profile `profile`, a
/// feature-flag profile `<profile>-feature-flags` and the [`LOCAL_STRATEGIES`].
pub async fn create_layout(
    client: &aws_sdk_appconfig::Client,
    application: &str,
    environment: &str,
    profile: &str,
) -> Result<Layout, LayoutError> {
    let fail = |operation: &'static str| {
        move |e: Box<dyn std::error::Error + Send + Sync>| LayoutError {
            operation,
            source: e,
        }
    };
    let app = client
        .create_application()
        .name(application)
        .send()
        .await
        .map_err(|e| fail("CreateApplication")(Box::new(e)))?;
    let app_id = app.id().unwrap_or_default().to_owned();
    let env = client
        .create_environment()
        .application_id(&app_id)
        .name(environment)
        .send()
        .await
        .map_err(|e| fail("CreateEnvironment")(Box::new(e)))?;
    let mut profiles = Vec::new();
    for (name, kind) in [
        (profile.to_owned(), "AWS.Freeform"),
        (
            format!("{profile}-feature-flags"),
            "AWS.AppConfig.FeatureFlags",
        ),
    ] {
        let created = client
            .create_configuration_profile()
            .application_id(&app_id)
            .name(name)
            .location_uri("hosted")
            .r#type(kind)
            .send()
            .await
            .map_err(|e| fail("CreateConfigurationProfile")(Box::new(e)))?;
        profiles.push(created.id().unwrap_or_default().to_owned());
    }
    for (name, minutes, growth, factor, bake) in LOCAL_STRATEGIES {
        client
            .create_deployment_strategy()
            .name(name)
            .deployment_duration_in_minutes(minutes)
            .growth_type(growth.into())
            .growth_factor(factor)
            .final_bake_time_in_minutes(bake)
            .replicate_to(aws_sdk_appconfig::types::ReplicateTo::None)
            .send()
            .await
            .map_err(|e| fail("CreateDeploymentStrategy")(Box::new(e)))?;
    }
    Ok(Layout {
        application: app_id,
        environment: env.id().unwrap_or_default().to_owned(),
        profile: profiles[0].clone(),
        feature_flags_profile: profiles[1].clone(),
    })
}

/// A running ministack with the local layout created, and clients for it: what the runner's
/// tests start.
#[derive(Debug)]
pub struct TestAppConfig {
    /// The emulator (stopped when this is dropped).
    pub stack: Ministack,
    /// A control-plane client.
    pub control: aws_sdk_appconfig::Client,
    /// An AppConfigData client with Lockstep's settings.
    pub data: aws_sdk_appconfigdata::Client,
    /// The ids of what [`create_layout`] made.
    pub layout: Layout,
}

/// Why the local AppConfig could not be started or used.
#[derive(Debug, Error)]
pub enum TestAppConfigError {
    /// ministack did not start.
    #[error(transparent)]
    Start(#[from] MinistackError),
    /// A control-plane call failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

impl TestAppConfig {
    /// Starts ministack for the project under `start` and creates `application`, `environment`
    /// and `profile` (see [`create_layout`]).
    pub async fn start(
        start: &Path,
        application: &str,
        environment: &str,
        profile: &str,
    ) -> Result<Self, TestAppConfigError> {
        let stack = Ministack::start_from(start).await?;
        let control = appconfig_client(&stack.endpoint);
        let data = appconfigdata_client(&stack.endpoint);
        let layout = create_layout(&control, application, environment, profile).await?;
        Ok(Self {
            stack,
            control,
            data,
            layout,
        })
    }

    /// Deploys `content` to the Freeform profile exactly as given (no stamping: a test's stamps
    /// are its own), labelled `label`, all at once, and waits until the deployment is
    /// `COMPLETE`.
    pub async fn publish(&self, content: &str, label: &str) -> Result<(), LayoutError> {
        let fail = |operation: &'static str| {
            move |e: Box<dyn std::error::Error + Send + Sync>| LayoutError {
                operation,
                source: e,
            }
        };
        let version = self
            .control
            .create_hosted_configuration_version()
            .application_id(&self.layout.application)
            .configuration_profile_id(&self.layout.profile)
            .content_type("application/json")
            .version_label(label)
            .content(aws_sdk_appconfig::primitives::Blob::new(content.as_bytes()))
            .send()
            .await
            .map_err(|e| fail("CreateHostedConfigurationVersion")(Box::new(e)))?
            .version_number();
        let strategy = self
            .control
            .list_deployment_strategies()
            .send()
            .await
            .map_err(|e| fail("ListDeploymentStrategies")(Box::new(e)))?
            .items()
            .iter()
            .find(|s| s.name() == Some(LOCAL_STRATEGIES[0].0))
            .and_then(|s| s.id().map(str::to_owned))
            .unwrap_or_default();
        let started = self
            .control
            .start_deployment()
            .application_id(&self.layout.application)
            .environment_id(&self.layout.environment)
            .configuration_profile_id(&self.layout.profile)
            .configuration_version(version.to_string())
            .deployment_strategy_id(strategy)
            .send()
            .await
            .map_err(|e| fail("StartDeployment")(Box::new(e)))?;
        loop {
            let got = self
                .control
                .get_deployment()
                .application_id(&self.layout.application)
                .environment_id(&self.layout.environment)
                .deployment_number(started.deployment_number())
                .send()
                .await
                .map_err(|e| fail("GetDeployment")(Box::new(e)))?;
            if got.state() == Some(&aws_sdk_appconfig::types::DeploymentState::Complete) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
