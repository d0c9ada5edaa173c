//! Fleet mode: N simulated instances of each function, as Lambda runs several execution
//! environments of one function, each with its own flag cache.
//!
//! - **Cold starts are staggered**: instance 1 of each function starts (and prefetches) with the
//!   runner; instance i starts `(i - 1) · stagger` later (the runner uses P/N), so instances
//!   refresh at different moments and visibly hold different versions after a deployment.
//! - **Requests are spread round robin** over the started, unfrozen instances of the function,
//!   and every response names its instance in [`INSTANCE_HEADER`].
//! - **Frozen instances** neither serve nor refresh, like an idle Lambda environment. When every
//!   started instance of a function is frozen, the next request thaws one (Lambda would thaw or
//!   start an environment). A thawed instance refreshes on its next request when due: that is the
//!   library's refresh-on-access rule, and nothing here shortcuts it.
//! - Every instance reads through its own AppConfigData session (a cold start is a new
//!   session, so a gradual deployment reaches instances one by one, as in Lambda).
//! - The fleet view reads the caches with [`FlagCache::peek`], so looking never refreshes, and
//!   shows each instance's calls to AppConfigData ([`FlagCache::poll_counts`]): regular polls
//!   and the catch-ups journey tokens asked for (rule 8).

use crate::metrics_log::MetricsLog;
use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::{Body, Request, Response};
use lockstep::appconfig::AppConfigSource;
use lockstep::cache::{CacheOptions, FlagCache, FlagView};
use lockstep::durable::SnapshotStore;
use lockstep::metrics::emf::{DEFAULT_NAMESPACE, DEFAULT_SERVICE};
use lockstep::metrics::Emf;
use lockstep::{Clock, FlagCatalog, FlagStatus, Overrides, PollCounts, Settings};
use lockstep_http::metered;
use lockstep_http::problem::ApiError;
use lockstep_sample::submissions::SubmissionStore;
use lockstep_sample::FeatureX;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use thiserror::Error;

/// The response header naming the instance that served a request.
pub const INSTANCE_HEADER: &str = "x-lockstep-instance";

/// Names `LOCKSTEP_INSTANCES`: instances per function in the local runner.
pub const INSTANCES_VAR: &str = "LOCKSTEP_INSTANCES";

/// Default instances per function.
pub const DEFAULT_INSTANCES: usize = 4;

/// Most instances per function the runner accepts.
pub const MAX_INSTANCES: usize = 32;

/// The functions of template.yaml that hold flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `GET /config`.
    Config,
    /// `/feature-x/...`.
    FeatureX,
}

impl Function {
    /// The function's name, the prefix of its instances' names.
    pub fn name(self) -> &'static str {
        match self {
            Function::Config => "config",
            Function::FeatureX => "feature-x",
        }
    }

    /// Its logical id in `template.yaml` (how the template's alarms name it).
    pub fn logical_id(self) -> &'static str {
        match self {
            Function::Config => "ConfigFunction",
            Function::FeatureX => "FeatureXFunction",
        }
    }

    /// Every function the runner serves.
    pub const ALL: [Function; 2] = [Function::Config, Function::FeatureX];

    fn index(self) -> usize {
        match self {
            Function::Config => 0,
            Function::FeatureX => 1,
        }
    }
}

/// How many instances, and how far apart their cold starts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetOptions {
    /// Instances per function, at least 1.
    pub instances: usize,
    /// Delay between consecutive instances' cold starts (zero: all start with the runner).
    pub stagger: Duration,
}

/// A bad `LOCKSTEP_INSTANCES`.
#[derive(Debug, Error)]
#[error("{INSTANCES_VAR}={value:?}: expected a whole number from 1 to {MAX_INSTANCES}")]
pub struct FleetError {
    value: String,
}

impl FleetOptions {
    /// One instance per function (the shape of a single warm Lambda environment).
    pub fn single() -> Self {
        Self {
            instances: 1,
            stagger: Duration::ZERO,
        }
    }

    /// `LOCKSTEP_INSTANCES` instances (default 4), cold starts spread evenly over P.
    pub fn from_env(poll_interval: Duration) -> Result<Self, FleetError> {
        Self::from_value(std::env::var(INSTANCES_VAR).ok(), poll_interval)
    }

    fn from_value(value: Option<String>, poll_interval: Duration) -> Result<Self, FleetError> {
        let instances = match value {
            None => DEFAULT_INSTANCES,
            Some(value) => value
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_INSTANCES).contains(n))
                .ok_or(FleetError { value })?,
        };
        Ok(Self {
            instances,
            stagger: poll_interval / instances as u32,
        })
    }
}

/// One function's state in one instance.
enum Handler {
    Config(Arc<FlagCache>),
    FeatureX(FeatureX),
}

impl Handler {
    fn cache(&self) -> &FlagCache {
        match self {
            Handler::Config(cache) => cache,
            Handler::FeatureX(feature_x) => feature_x.flags(),
        }
    }

    async fn serve(&self, request: Request) -> Response<Body> {
        match self {
            Handler::Config(cache) => lockstep_http::config_routes::serve(cache, &request).await,
            Handler::FeatureX(feature_x) => feature_x.serve(request).await,
        }
    }
}

/// What every instance is built from: the one place the functions' state is constructed.
pub(crate) struct Builder {
    pub(crate) data: aws_sdk_appconfigdata::Client,
    pub(crate) catalog: FlagCatalog,
    pub(crate) overrides: Overrides,
    pub(crate) settings: Settings,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Arc<dyn SubmissionStore>,
    pub(crate) durable: Option<Arc<dyn SnapshotStore>>,
}

impl Builder {
    /// A cold start: a new cache with its own AppConfigData session, prefetched.
    async fn build(&self, function: Function) -> Handler {
        let source = AppConfigSource::new(self.data.clone(), crate::appconfig::target());
        let options = CacheOptions {
            catalog: self.catalog.clone(),
            overrides: self.overrides.clone(),
            settings: self.settings.clone(),
            clock: self.clock.clone(),
        };
        let cache =
            Arc::new(FlagCache::build(Box::new(source), options, self.durable.clone()).await);
        match function {
            Function::Config => Handler::Config(cache),
            Function::FeatureX => Handler::FeatureX(
                FeatureX::new(cache, self.store.clone(), self.clock.clone())
                    .expect("the product catalog declares feature X's flags"),
            ),
        }
    }
}

/// One simulated execution environment.
pub struct Instance {
    name: String,
    function: Function,
    starts_at: DateTime<Utc>,
    handler: OnceLock<Handler>,
    frozen: AtomicBool,
    served: AtomicU64,
    last_invoked_ms: AtomicI64,
}

const NEVER: i64 = i64::MIN;

impl Instance {
    fn new(function: Function, number: usize, starts_at: DateTime<Utc>) -> Self {
        Self {
            name: format!("{}-{number}", function.name()),
            function,
            starts_at,
            handler: OnceLock::new(),
            frozen: AtomicBool::new(false),
            served: AtomicU64::new(0),
            last_invoked_ms: AtomicI64::new(NEVER),
        }
    }

    /// Its name, e.g. `feature-x-3`.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn started(&self) -> bool {
        self.handler.get().is_some()
    }

    fn frozen(&self) -> bool {
        self.frozen.load(Ordering::SeqCst)
    }

    /// What its cache holds, without refreshing (`None` before its cold start).
    pub fn peek(&self) -> Option<FlagView> {
        self.handler.get().map(|h| h.cache().peek())
    }

    /// How many times its cache called AppConfigData, and how many of those calls were
    /// catch-ups a journey token asked for (`None` before its cold start).
    pub fn poll_counts(&self) -> Option<PollCounts> {
        self.handler.get().map(|h| h.cache().poll_counts())
    }
}

/// Every instance of every function, and the round-robin counters.
pub struct Fleet {
    functions: [Vec<Arc<Instance>>; 2],
    next: [AtomicUsize; 2],
    clock: Arc<dyn Clock>,
    catalog: FlagCatalog,
    cold_starts: Vec<tokio::task::JoinHandle<()>>,
    /// Each function's metrics namespace and dimensions, as its Lambda sets them.
    emf: [Emf; 2],
    /// The documents every invocation wrote.
    metrics: MetricsLog,
}

impl Fleet {
    /// Starts instance 1 of each function now (prefetched before this returns) and schedules
    /// the others' cold starts; with no stagger, every instance starts now.
    pub(crate) async fn start(builder: Arc<Builder>, options: FleetOptions) -> Self {
        let count = options.instances.max(1);
        let now = builder.clock.now();
        let stagger = TimeDelta::from_std(options.stagger).unwrap_or(TimeDelta::zero());
        let functions = Function::ALL.map(|function| {
            (0..count)
                .map(|i| Arc::new(Instance::new(function, i + 1, now + stagger * i as i32)))
                .collect::<Vec<_>>()
        });
        let mut cold_starts = Vec::new();
        for instances in &functions {
            for (i, instance) in instances.iter().enumerate() {
                if i == 0 || options.stagger.is_zero() {
                    let handler = builder.build(instance.function).await;
                    let _ = instance.handler.set(handler);
                    tracing::info!(instance = %instance.name, path = "cold_start", "instance started");
                    continue;
                }
                let (builder, instance) = (builder.clone(), instance.clone());
                let delay = options.stagger * i as u32;
                cold_starts.push(tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let handler = builder.build(instance.function).await;
                    let _ = instance.handler.set(handler);
                    tracing::info!(instance = %instance.name, path = "cold_start", "instance started");
                }));
            }
        }
        Self {
            functions,
            next: [AtomicUsize::new(0), AtomicUsize::new(0)],
            clock: builder.clock.clone(),
            catalog: builder.catalog.clone(),
            cold_starts,
            emf: Function::ALL.map(|function| {
                Emf::from_env(function.name()).unwrap_or_else(|error| {
                    tracing::warn!(error = %error, path = "metrics_defaults", "metrics settings refused; using the defaults");
                    Emf::new(DEFAULT_NAMESPACE, DEFAULT_SERVICE, function.name())
                        .expect("the defaults are valid")
                })
            }),
            metrics: MetricsLog::default(),
        }
    }

    /// The next started, unfrozen instance of `function` in round-robin order; when every
    /// started one is frozen, the next started one is thawed for the request.
    fn pick(&self, function: Function) -> Option<&Arc<Instance>> {
        let instances = &self.functions[function.index()];
        let first = self.next[function.index()].fetch_add(1, Ordering::Relaxed);
        let order = || (0..instances.len()).map(|k| &instances[(first + k) % instances.len()]);
        if let Some(instance) = order().find(|i| i.started() && !i.frozen()) {
            return Some(instance);
        }
        let instance = order().find(|i| i.started())?;
        instance.frozen.store(false, Ordering::SeqCst);
        tracing::info!(instance = %instance.name, path = "thawed_for_request", "every instance was frozen; thawed one for the request");
        Some(instance)
    }

    /// Serves a request on the next instance of `function`, naming it in [`INSTANCE_HEADER`].
    pub async fn serve(&self, function: Function, request: Request) -> Response<Body> {
        let Some(instance) = self.pick(function) else {
            // Instance 1 starts with the runner, so this cannot happen.
            return ApiError::Internal("no instance started".into()).into_response();
        };
        let Some(handler) = instance.handler.get() else {
            return ApiError::Internal("instance not started".into()).into_response();
        };
        instance.served.fetch_add(1, Ordering::Relaxed);
        instance
            .last_invoked_ms
            .store(self.clock.now_millis(), Ordering::Relaxed);
        tracing::debug!(instance = %instance.name, path = "round_robin", "request routed");
        let route = metered::route_key(request.extensions());
        let mut response = handler.serve(request).await;
        // The invocation's metrics, as the function's `metered` stack writes them in Lambda.
        if let Some(document) = metered::end_invocation(
            handler.cache(),
            &self.emf[function.index()],
            route.as_deref(),
            Some(response.status()),
        ) {
            self.metrics.push(&document);
        }
        if let Ok(value) = http::HeaderValue::from_str(&instance.name) {
            response.headers_mut().insert(INSTANCE_HEADER, value);
        }
        response
    }

    /// The metrics documents the instances wrote.
    pub fn metrics(&self) -> &MetricsLog {
        &self.metrics
    }

    /// The instance called `name`.
    pub fn instances(&self) -> impl Iterator<Item = &Arc<Instance>> {
        self.functions.iter().flatten()
    }

    /// One instance by name.
    pub fn instance(&self, name: &str) -> Option<&Arc<Instance>> {
        self.functions.iter().flatten().find(|i| i.name == name)
    }

    /// Freezes or thaws `name`; `None` for an unknown instance.
    pub fn set_frozen(&self, name: &str, frozen: bool) -> Option<InstanceJson> {
        let instance = self.instance(name)?;
        instance.frozen.store(frozen, Ordering::SeqCst);
        if frozen {
            tracing::info!(instance = %name, path = "frozen", "instance frozen");
        } else {
            tracing::info!(instance = %name, path = "thawed", "instance thawed");
        }
        Some(self.describe(instance))
    }

    /// Every instance as the fleet view shows it.
    pub fn view(&self) -> Vec<FunctionJson> {
        Function::ALL
            .iter()
            .map(|f| FunctionJson {
                function: f.name(),
                instances: self.functions[f.index()]
                    .iter()
                    .map(|i| self.describe(i))
                    .collect(),
            })
            .collect()
    }

    fn describe(&self, instance: &Instance) -> InstanceJson {
        let now_ms = self.clock.now_millis();
        let seconds_since = |t: DateTime<Utc>| (now_ms - t.timestamp_millis()) as f64 / 1000.0;
        let last_invoked = match instance.last_invoked_ms.load(Ordering::Relaxed) {
            NEVER => None,
            ms => DateTime::from_timestamp_millis(ms),
        };
        let mut json = InstanceJson {
            name: instance.name.clone(),
            function: instance.function.name(),
            state: match (instance.started(), instance.frozen()) {
                (false, _) => "starting",
                (true, true) => "frozen",
                (true, false) => "warm",
            },
            starts_at: instance.starts_at,
            configuration_version: None,
            last_modified_timestamp: None,
            fetched_at: None,
            fetch_age_seconds: None,
            next_refresh_at: None,
            refresh_due: false,
            degraded: None,
            is_backend_consistent: None,
            flags: BTreeMap::new(),
            polls: instance.poll_counts(),
            served: instance.served.load(Ordering::Relaxed),
            last_invoked_at: last_invoked,
            idle_seconds: last_invoked.map(seconds_since),
        };
        if let Some(view) = instance.peek() {
            let state = view.state();
            json.configuration_version = Some(view.snapshot().version.clone());
            json.last_modified_timestamp = view.snapshot().profile_stamp.map(|s| s.at);
            json.fetched_at = state.fetched_at;
            json.fetch_age_seconds = state.fetched_at.map(seconds_since);
            json.next_refresh_at = Some(state.next_refresh_at);
            json.refresh_due = now_ms >= state.next_refresh_at.timestamp_millis();
            json.degraded = view.degraded().map(|d| d.reason());
            json.is_backend_consistent = Some(view.backend().consistent);
            json.flags = self
                .catalog
                .flags()
                .iter()
                .filter_map(|decl| Some((decl.name.clone(), view.status(&decl.name)?)))
                .collect();
        }
        json
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for task in &self.cold_starts {
            task.abort();
        }
    }
}

/// One function's instances in the fleet view.
#[derive(Debug, Serialize)]
pub struct FunctionJson {
    /// `config` or `feature-x`.
    pub function: &'static str,
    /// Its instances, in order.
    pub instances: Vec<InstanceJson>,
}

/// One instance in the fleet view (what its cache holds, read without refreshing).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceJson {
    /// e.g. `config-2`.
    pub name: String,
    /// Its function.
    pub function: &'static str,
    /// `starting` (before its cold start), `warm` or `frozen`.
    pub state: &'static str,
    /// When its cold start is (or was) due.
    pub starts_at: DateTime<Utc>,
    /// The configuration version it serves.
    pub configuration_version: Option<String>,
    /// That version's profile stamp T.
    pub last_modified_timestamp: Option<DateTime<Utc>>,
    /// When its last successful fetch started.
    pub fetched_at: Option<DateTime<Utc>>,
    /// How long ago that was, seconds.
    pub fetch_age_seconds: Option<f64>,
    /// When its next request refreshes first.
    pub next_refresh_at: Option<DateTime<Utc>>,
    /// Whether its next request refreshes first.
    pub refresh_due: bool,
    /// Why it cannot vouch for its configuration, if it cannot.
    pub degraded: Option<&'static str>,
    /// What its `/config` would say now.
    pub is_backend_consistent: Option<bool>,
    /// Every declared flag as it holds it.
    pub flags: BTreeMap<String, FlagStatus>,
    /// Its calls to AppConfigData since its cold start (`{polls, catchUps}`: every call, and
    /// those a journey token asked for, at most one per Q; rule 8), none before its cold start.
    pub polls: Option<PollCounts>,
    /// Requests it served.
    pub served: u64,
    /// When it last served one.
    pub last_invoked_at: Option<DateTime<Utc>>,
    /// How long ago that was, seconds.
    pub idle_seconds: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_default_to_four_with_cold_starts_spread_over_p() {
        let options = FleetOptions::from_value(None, Duration::from_secs(15)).unwrap();

        assert_eq!(options.instances, 4);
        assert_eq!(options.stagger, Duration::from_millis(3750));
    }

    #[test]
    fn an_instance_count_out_of_range_or_not_a_number_is_an_error_naming_the_variable() {
        for value in ["0", "33", "four", "-1", ""] {
            let err =
                FleetOptions::from_value(Some(value.into()), Duration::from_secs(15)).unwrap_err();
            assert!(err.to_string().contains(INSTANCES_VAR), "{err}");
        }
        let one = FleetOptions::from_value(Some(" 1 ".into()), Duration::from_secs(15)).unwrap();
        assert_eq!(one.instances, 1);
    }
}
