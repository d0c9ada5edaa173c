#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod context;
mod value;

pub use value::to_json;

use lockstep::cache::Degraded;
use lockstep::snapshot::{Origin, ResolvedFlag};
use lockstep::source::FailureKind;
use lockstep::targeted::{self, Context, Evaluation};
use lockstep::{FlagCache, FlagView};
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    async_trait, EvaluationContext, EvaluationError, EvaluationErrorCode, EvaluationReason,
    EvaluationResult, FlagMetadata, StructValue,
};
use serde_json::{Map, Value as Json};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// The provider's name in [`ProviderMetadata`] (and in the SDK's hook contexts).
pub const PROVIDER_NAME: &str = "lockstep";

/// The attribute holding a feature flag's typed value (string, number, or an object written as
/// its JSON text).
pub const VALUE_ATTRIBUTE: &str = "value";

/// The attribute naming a flag's variant (the name AppConfig Agent gives the variant it selected
/// for a multi-variant flag).
pub const VARIANT_ATTRIBUTE: &str = "_variant";

/// The reason of a value served by a degraded instance from a configuration it could not
/// refresh (the specification's `STALE`; the Rust SDK has no variant for it).
pub const STALE: &str = "STALE";

/// The error code (`EvaluationErrorCode::General`) of a typed read of a disabled flag: AppConfig
/// may drop a disabled flag's attributes, so it has no value, and the caller's default applies.
pub const DISABLED: &str = "DISABLED";

/// The flag metadata keys the provider sets. An attribute of the same name is shadowed.
pub mod metadata {
    /// Whether every instance serves this value now, as far as this instance can vouch (false
    /// on a degraded instance).
    pub const CONSISTENT: &str = "consistent";
    /// `T + Δ + P + ε`, RFC 3339 UTC; absent for an unstamped or forced flag.
    pub const CONSISTENT_AT: &str = "consistentAt";
    /// `T + Δ + Q + ε` (journey-token clients), RFC 3339 UTC; absent like `consistentAt`.
    pub const JOURNEY_OPENS_AT: &str = "journeyOpensAt";
    /// When the caller's value next changes by a schedule or a ramp (design rule 10), RFC 3339
    /// UTC; absent when none is known.
    pub const CHANGES_AT: &str = "changesAt";
    /// Whether a `FORCE_<FLAG>` variable set the flag's value.
    pub const FORCED: &str = "forced";
    /// The flag's stamp T (the start of the deployment that introduced its value), RFC 3339
    /// UTC; absent for an unstamped or forced flag.
    pub const LAST_MODIFIED_TIMESTAMP: &str = "lastModifiedTimestamp";
    /// The configuration version served (`defaults` for the bundled defaults).
    pub const CONFIGURATION_VERSION: &str = "configurationVersion";
    /// Why the instance cannot vouch for its configuration (`fetch_failed`, `timeout`, …);
    /// absent when it can.
    pub const DEGRADED: &str = "degraded";
}

type PendingCache = Pin<Box<dyn Future<Output = FlagCache> + Send + 'static>>;

/// An OpenFeature provider over a Lockstep [`FlagCache`]. Cheap to clone: clones share the
/// cache.
#[derive(Clone)]
pub struct LockstepProvider {
    inner: Arc<Inner>,
}

struct Inner {
    metadata: ProviderMetadata,
    cache: OnceLock<Arc<FlagCache>>,
    pending: Mutex<Option<PendingCache>>,
}

impl std::fmt::Debug for LockstepProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockstepProvider")
            .field("name", &self.inner.metadata.name)
            .field("cache", &self.inner.cache.get())
            .finish_non_exhaustive()
    }
}

impl LockstepProvider {
    /// A provider over a cache built at init (it has prefetched), typically the one the
    /// function's gate and `/config` use too: one cache, one AppConfig session per instance.
    pub fn new(cache: Arc<FlagCache>) -> Self {
        let provider = Self::empty();
        // A fresh cell: this cannot fail.
        let _ = provider.inner.cache.set(cache);
        provider
    }

    /// A provider whose cache is built by `cache` (`FlagCache::new`, which prefetches) when the
    /// SDK initializes it (`set_provider`). Until then its status is `NotReady` and every
    /// evaluation answers `PROVIDER_NOT_READY`.
    pub fn initializing(cache: impl Future<Output = FlagCache> + Send + 'static) -> Self {
        let provider = Self::empty();
        *provider
            .inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::pin(cache));
        provider
    }

    fn empty() -> Self {
        Self {
            inner: Arc::new(Inner {
                metadata: ProviderMetadata::new(PROVIDER_NAME),
                cache: OnceLock::new(),
                pending: Mutex::new(None),
            }),
        }
    }

    /// The cache, once there is one.
    pub fn cache(&self) -> Option<&Arc<FlagCache>> {
        self.inner.cache.get()
    }

    /// Reads the cache, refreshing first when the configuration is due (rule 1).
    async fn view(&self) -> EvaluationResult<FlagView> {
        match self.inner.cache.get() {
            Some(cache) => Ok(cache.read().await),
            None => Err(error(
                EvaluationErrorCode::ProviderNotReady,
                "the Lockstep provider is not initialized: its flag cache has not prefetched yet"
                    .into(),
            )),
        }
    }

    async fn resolve<T>(
        &self,
        key: &str,
        context: &EvaluationContext,
        read: impl FnOnce(&Found<'_>) -> EvaluationResult<ResolutionDetails<T>>,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        let result = match self.view().await {
            Ok(view) => Found::in_view(&view, key, context).and_then(|found| read(&found)),
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            // The code and the flag's name only: never a value.
            tracing::debug!(flag = %key, code = %e.code, path = "openfeature_error", "OpenFeature evaluation answered an error");
        }
        result
    }
}

/// The provider's status for what a read sees (the table in the crate's README).
fn status_of(view: &FlagView) -> ProviderStatus {
    match view.degraded() {
        None => ProviderStatus::Ready,
        Some(Degraded::NeverFetched {
            kind: FailureKind::NotYet,
        }) => ProviderStatus::NotReady,
        Some(_) if view.snapshot().origin == Origin::Defaults => ProviderStatus::Error,
        Some(_) => ProviderStatus::STALE,
    }
}

/// One flag of one read, for one caller.
struct Found<'a> {
    view: &'a FlagView,
    key: &'a str,
    flag: &'a ResolvedFlag,
    attributes: Option<&'a Map<String, Json>>,
    /// For a flag defined by rules (and not forced): the caller's context and the evaluation of
    /// the rules for it, which decides the value, reason and variant (design rule 10).
    targeted: Option<(Context, Evaluation<'a>)>,
}

impl<'a> Found<'a> {
    fn in_view(
        view: &'a FlagView,
        key: &'a str,
        context: &EvaluationContext,
    ) -> EvaluationResult<Self> {
        let snapshot = view.snapshot();
        match snapshot.flag(key) {
            Some(flag) => Ok(Self {
                view,
                key,
                flag,
                attributes: snapshot.attributes(key),
                // A plain or forced flag has one value for everyone: its context is not read.
                targeted: flag.rules().and_then(|_| {
                    let context = crate::context::to_context(context);
                    let evaluation = view.evaluate(key, &context)?;
                    Some((context, evaluation))
                }),
            }),
            None if snapshot.origin == Origin::Defaults => Err(error(
                EvaluationErrorCode::FlagNotFound,
                format!("flag {key:?} is not declared, and no configuration was fetched yet (bundled defaults)"),
            )),
            None => Err(error(
                EvaluationErrorCode::FlagNotFound,
                format!(
                    "flag {key:?} is neither in configuration {} nor declared",
                    snapshot.version
                ),
            )),
        }
    }

    /// The `value` attribute of an enabled flag.
    fn value_attribute(&self) -> Option<&'a Json> {
        if !self.flag.value {
            return None;
        }
        self.attributes.and_then(|a| a.get(VALUE_ATTRIBUTE))
    }

    fn boolean(&self) -> EvaluationResult<ResolutionDetails<bool>> {
        if let Some((_, evaluation)) = &self.targeted {
            return match evaluation.value {
                Json::Bool(b) => Ok(self.evaluated(*b, evaluation)),
                other => Err(self.mismatch("a boolean", value::kind(other))),
            };
        }
        if self.flag.forced {
            // FORCE_<FLAG> wins over every source, a `value` attribute included.
            return Ok(self.details(self.flag.value, true));
        }
        match self.value_attribute() {
            None => Ok(self.details(self.flag.value, true)),
            Some(Json::Bool(b)) => Ok(self.details(*b, false)),
            Some(other) => Err(self.mismatch("a boolean", value::kind(other))),
        }
    }

    /// A typed value, read by `convert`: the evaluation's value for a flag defined by rules, else
    /// the `value` attribute of an enabled flag.
    fn typed<T>(
        &self,
        wanted: &'static str,
        convert: impl FnOnce(&Json) -> Result<T, EvaluationError>,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        if let Some((_, evaluation)) = &self.targeted {
            return convert(evaluation.value).map(|v| self.evaluated(v, evaluation));
        }
        if !self.flag.value {
            return Err(error(
                EvaluationErrorCode::General(DISABLED.into()),
                format!(
                    "flag {:?} is disabled: it carries no value (use the default)",
                    self.key
                ),
            ));
        }
        match self.value_attribute() {
            None => Err(self.mismatch(wanted, "boolean")),
            Some(json) => convert(json).map(|v| self.details(v, false)),
        }
    }

    fn scalar<T>(
        &self,
        wanted: &'static str,
        read: fn(&Json) -> Option<T>,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        self.typed(wanted, |json| {
            read(json).ok_or_else(|| self.mismatch(wanted, value::kind(json)))
        })
    }

    fn object(&self) -> EvaluationResult<ResolutionDetails<StructValue>> {
        self.typed("an object", |json| {
            value::to_struct(json).map_err(|e| match e {
                value::NotStruct::Mismatch(found) => self.mismatch("an object", found),
                value::NotStruct::Null => error(
                    EvaluationErrorCode::ParseError,
                    format!(
                        "flag {:?}: its object holds null, which OpenFeature cannot represent",
                        self.key
                    ),
                ),
            })
        })
    }

    fn mismatch(&self, wanted: &str, found: &str) -> EvaluationError {
        error(
            EvaluationErrorCode::TypeMismatch,
            format!("flag {:?} is {found}, not {wanted}", self.key),
        )
    }

    /// `from_enabled`: the value is the flag's on/off state (which a `FORCE_` variable may
    /// set), not an attribute.
    fn details<T>(&self, value: T, from_enabled: bool) -> ResolutionDetails<T> {
        // A forced value is no variant of the configuration's; an on/off value without a named
        // variant is `on` or `off` (as OFREP answers it).
        let named = if self.flag.forced && from_enabled {
            None
        } else {
            self.attributes
                .and_then(|a| a.get(VARIANT_ATTRIBUTE))
                .and_then(Json::as_str)
        };
        let on_off = || from_enabled.then_some(if self.flag.value { "on" } else { "off" });
        ResolutionDetails {
            value,
            variant: named.or_else(on_off).map(str::to_owned),
            reason: Some(self.reason(from_enabled)),
            flag_metadata: Some(self.metadata()),
        }
    }

    /// The details of a value the rules decided: the evaluation's variant and reason.
    fn evaluated<T>(&self, value: T, evaluation: &Evaluation<'_>) -> ResolutionDetails<T> {
        ResolutionDetails {
            value,
            variant: Some(evaluation.variant.to_owned()),
            reason: Some(self.evaluated_reason(evaluation.reason)),
            flag_metadata: Some(self.metadata()),
        }
    }

    /// The evaluation's reason on a healthy instance; on a degraded one the rules still decide
    /// the value, from a configuration the instance cannot vouch for, so its reason is the
    /// instance's, as for any other value.
    fn evaluated_reason(&self, reason: targeted::Reason) -> EvaluationReason {
        self.degraded_reason().unwrap_or(match reason {
            targeted::Reason::TargetingMatch => EvaluationReason::TargetingMatch,
            targeted::Reason::Split => EvaluationReason::Split,
            targeted::Reason::Default => EvaluationReason::Default,
            targeted::Reason::Static => EvaluationReason::Static,
        })
    }

    fn reason(&self, from_enabled: bool) -> EvaluationReason {
        if self.flag.forced && from_enabled {
            EvaluationReason::Static
        } else {
            self.degraded_reason().unwrap_or(EvaluationReason::Cached)
        }
    }

    /// The reason of any configured value on a degraded instance: `DEFAULT` for the bundled
    /// defaults, `STALE` for last-known-good; `None` on a healthy one.
    fn degraded_reason(&self) -> Option<EvaluationReason> {
        if self.view.snapshot().origin == Origin::Defaults {
            Some(EvaluationReason::Default)
        } else if self.view.degraded().is_some() {
            Some(EvaluationReason::Other(STALE.into()))
        } else {
            None
        }
    }

    fn metadata(&self) -> FlagMetadata {
        let mut out = FlagMetadata::default();
        for (key, json) in self.attributes.into_iter().flatten() {
            if key == VALUE_ATTRIBUTE || key == VARIANT_ATTRIBUTE {
                continue;
            }
            if let Some(v) = value::metadata_value(json) {
                out.add_value(key.clone(), v);
            }
        }
        let time = |at: chrono::DateTime<chrono::Utc>| {
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let degraded = self.view.degraded();
        let now_ms = self.view.now().timestamp_millis();
        let status = match &self.targeted {
            Some((context, _)) => self.flag.status_for(context, now_ms, degraded.is_some()),
            None => self.flag.status(now_ms, degraded.is_some()),
        };
        out.add_value(metadata::CONSISTENT, status.consistent);
        out.add_value(metadata::FORCED, status.forced);
        if let Some(at) = status.consistent_at {
            out.add_value(metadata::CONSISTENT_AT, time(at));
        }
        if let Some(at) = status.journey_opens_at {
            out.add_value(metadata::JOURNEY_OPENS_AT, time(at));
        }
        if let Some(at) = status.changes_at {
            out.add_value(metadata::CHANGES_AT, time(at));
        }
        if let Some(stamp) = self.flag.stamp.filter(|_| !self.flag.forced) {
            out.add_value(metadata::LAST_MODIFIED_TIMESTAMP, time(stamp.at));
        }
        out.add_value(
            metadata::CONFIGURATION_VERSION,
            self.view.snapshot().version.clone(),
        );
        if let Some(d) = degraded {
            out.add_value(metadata::DEGRADED, d.reason());
        }
        out
    }
}

fn error(code: EvaluationErrorCode, message: String) -> EvaluationError {
    EvaluationError {
        code,
        message: Some(message),
    }
}

#[async_trait]
impl FeatureProvider for LockstepProvider {
    async fn initialize(&mut self, _context: &EvaluationContext) {
        let pending = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(pending) = pending {
            let cache = pending.await;
            if self.inner.cache.set(Arc::new(cache)).is_err() {
                tracing::warn!(
                    path = "openfeature_init_twice",
                    "the provider already had a cache; the one just built is dropped"
                );
            }
        }
        tracing::info!(status = ?self.status(), path = "openfeature_initialized", "OpenFeature provider initialized");
    }

    fn status(&self) -> ProviderStatus {
        match self.inner.cache.get() {
            None => ProviderStatus::NotReady,
            // Without refreshing: a status read never calls AppConfig.
            Some(cache) => status_of(&cache.peek()),
        }
    }

    fn metadata(&self) -> &ProviderMetadata {
        &self.inner.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        self.resolve(flag_key, evaluation_context, |f| f.boolean())
            .await
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        self.resolve(flag_key, evaluation_context, |f| {
            f.scalar("an integer", value::to_int)
        })
        .await
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        self.resolve(flag_key, evaluation_context, |f| {
            f.scalar("a number", value::to_float)
        })
        .await
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        self.resolve(flag_key, evaluation_context, |f| {
            f.scalar("a string", value::to_string)
        })
        .await
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        self.resolve(flag_key, evaluation_context, |f| f.object())
            .await
    }
}
