//! The OpenFeature specification's Gherkin suite, `tests/features/evaluation_v2.feature`
//! (vendored: `tests/features/SOURCE.md`), run with `cucumber` against [`LockstepProvider`] over
//! in-memory sources holding the suite's flags.
//!
//! The flags are in two documents, as a service would keep them in two AppConfig configuration
//! profiles, since neither format holds them all: the typed flags with their variants and
//! metadata as an AppConfig feature-flag document (`tests/fixtures/evaluation-flags.json`, typed
//! values in attributes), and the six flags with targeting as a Freeform document of Lockstep
//! rules (`tests/fixtures/evaluation-targeting.json`: the suite's CEL `contextEvaluator`s as
//! Powertools conditions; only Freeform documents hold definitions). Each profile has its own
//! cache and provider: the first is the API's default provider, the second is bound to the
//! domain [`TARGETING_DOMAIN`], and a flag step asks the client of the domain whose document
//! holds the flag, so targeting runs through the real SDK, the provider and the evaluator.
//!
//! Scenarios go through the real SDK: an `OpenFeature` API object per scenario (the singleton's
//! type; one each, so that concurrent scenarios do not replace each other's provider), its
//! `set_provider`/`set_named_provider` and a client. Where the Rust SDK 0.3 differs from the
//! specification's client (no default-value parameter, no status accessor, `initialize` before
//! registration, no null context value), the steps adapt as the crate README says. The scenarios
//! in [`EXCLUDED`] are not run, each with its reason (also in the README); the process fails when
//! a scenario that runs fails, when a step has no definition, or when an exclusion matches no
//! scenario any more.

use chrono::{DateTime, TimeDelta, Utc};
use cucumber::gherkin::{Scenario, Step};
use cucumber::writer::Stats as _;
use cucumber::{given, then, when, World};
use lockstep::cache::CacheOptions;
use lockstep::memory::MemorySource;
use lockstep::{FlagCache, FlagCatalog, ManualClock, Overrides, Settings};
use lockstep_openfeature::{to_json, LockstepProvider};
use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{
    async_trait, Client, EvaluationContext, EvaluationContextFieldValue, EvaluationDetails,
    EvaluationError, EvaluationOptions, EvaluationReason, EvaluationResult, FlagMetadata,
    FlagMetadataValue, Hook, HookContext, HookHints, OpenFeature, StructValue, Value,
};
use serde_json::Value as Json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// The vendored suite, byte for byte.
const FEATURE: &str = include_str!("features/evaluation_v2.feature");
/// The suite's typed flags: an AppConfig feature-flag document.
const FLAGS: &str = include_str!("fixtures/evaluation-flags.json");
/// The suite's flags with targeting: a Freeform document of Lockstep rules.
const TARGETING_FLAGS: &str = include_str!("fixtures/evaluation-targeting.json");
/// The domain of the provider over [`TARGETING_FLAGS`].
const TARGETING_DOMAIN: &str = "targeting";

/// Whether `key` is a flag of [`TARGETING_FLAGS`] (the metadata entry is none).
fn is_targeted(key: &str) -> bool {
    static KEYS: LazyLock<Vec<String>> = LazyLock::new(|| {
        let document: serde_json::Map<String, Json> =
            serde_json::from_str(TARGETING_FLAGS).expect("the targeting fixture is JSON");
        document
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| key != "lockstepMetadata")
            .collect()
    });
    KEYS.iter().any(|k| k == key)
}

/// A scenario not run: its name, the value in its example row when only some rows are excluded,
/// and why.
struct Exclusion {
    scenario: &'static str,
    example: Option<&'static str>,
    reason: &'static str,
    matched: AtomicUsize,
}

const fn exclude(
    scenario: &'static str,
    example: Option<&'static str>,
    reason: &'static str,
) -> Exclusion {
    Exclusion {
        scenario,
        example,
        reason,
        matched: AtomicUsize::new(0),
    }
}

const STATIC_REASON: &str =
    "expects reason STATIC; Lockstep answers CACHED for a value from its poll cache (STATIC is for FORCE_ overrides)";
const FATAL: &str =
    "the Rust SDK 0.3 has no FATAL status and no PROVIDER_FATAL code (and Lockstep no irrecoverable state)";

/// Every scenario of the suite that is not run, with the reason (the crate README lists them too).
static EXCLUDED: [Exclusion; 7] = [
    exclude("Resolves zero value", None, STATIC_REASON),
    exclude("Complete evaluation details structure", None, STATIC_REASON),
    exclude("Structure flag evaluation", None, STATIC_REASON),
    exclude(
        "DISABLED reason",
        None,
        "a Lockstep boolean's enabled: false is its value (CACHED); a typed read of a disabled flag is an error so that the caller's default applies (the Rust SDK 0.3 gives a provider no default to return with DISABLED)",
    ),
    exclude("Provider in fatal state error", None, FATAL),
    exclude("Provider status accessibility", Some("fatal"), FATAL),
    exclude(
        "Evaluation context immutability",
        None,
        "the Rust SDK takes the context by shared reference and returns owned details: the borrow checker enforces it, nothing can be observed at run time",
    ),
];

fn exclusion(scenario: &Scenario) -> Option<&'static Exclusion> {
    let row = scenario
        .examples
        .first()
        .and_then(|e| e.table.as_ref())
        .and_then(|t| t.rows.get(1));
    EXCLUDED.iter().find(|e| {
        e.scenario == scenario.name
            && e.example
                .is_none_or(|value| row.is_some_and(|r| r.iter().any(|cell| cell == value)))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Boolean,
    String,
    Integer,
    Float,
    Object,
}

impl Kind {
    fn parse(name: &str) -> Self {
        match name {
            "Boolean" => Kind::Boolean,
            "String" => Kind::String,
            "Integer" => Kind::Integer,
            "Float" => Kind::Float,
            "Object" => Kind::Object,
            other => panic!("no flag type {other:?} in the suite"),
        }
    }

    /// A value as the feature file writes it (objects with `\"`-escaped quotes).
    fn value(self, text: &str) -> Json {
        match self {
            Kind::Boolean => Json::Bool(text.parse().expect("true or false")),
            Kind::String => Json::String(text.to_owned()),
            Kind::Integer => Json::from(text.parse::<i64>().expect("an integer")),
            Kind::Float => Json::from(text.parse::<f64>().expect("a number")),
            Kind::Object => serde_json::from_str(&text.replace("\\\"", "\"")).expect("JSON"),
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    kind: Kind,
    key: String,
    fallback: Json,
}

/// What an evaluation gave the application: the details, or the fallback with reason ERROR and
/// the error's code (requirement 1.4.10, which the Rust SDK leaves to its caller).
#[derive(Debug, Clone)]
struct Outcome {
    value: Json,
    flag_key: String,
    reason: Option<String>,
    variant: Option<String>,
    error_code: Option<String>,
    metadata: FlagMetadata,
}

impl Outcome {
    fn of(case: &Case, result: EvaluationResult<EvaluationDetails<Json>>) -> Self {
        match result {
            Ok(d) => Outcome {
                value: d.value,
                flag_key: d.flag_key,
                reason: d.reason.as_ref().map(EvaluationReason::to_string),
                variant: d.variant,
                error_code: None,
                metadata: d.flag_metadata,
            },
            Err(e) => Outcome {
                value: case.fallback.clone(),
                flag_key: case.key.clone(),
                reason: Some("ERROR".into()),
                variant: None,
                error_code: Some(e.code.to_string()),
                metadata: FlagMetadata::default(),
            },
        }
    }
}

fn details<T>(d: EvaluationDetails<T>, value: impl FnOnce(T) -> Json) -> EvaluationDetails<Json> {
    EvaluationDetails {
        flag_key: d.flag_key,
        value: value(d.value),
        reason: d.reason,
        variant: d.variant,
        flag_metadata: d.flag_metadata,
    }
}

/// One evaluation through a client of the SDK.
async fn through_client(
    client: &Client,
    case: &Case,
    context: &EvaluationContext,
    options: Option<&EvaluationOptions>,
) -> Outcome {
    let key = case.key.as_str();
    let ctx = Some(context);
    let result = match case.kind {
        Kind::Boolean => client
            .get_bool_details(key, ctx, options)
            .await
            .map(|d| details(d, Json::Bool)),
        Kind::String => client
            .get_string_details(key, ctx, options)
            .await
            .map(|d| details(d, Json::String)),
        Kind::Integer => client
            .get_int_details(key, ctx, options)
            .await
            .map(|d| details(d, Json::from)),
        Kind::Float => client
            .get_float_details(key, ctx, options)
            .await
            .map(|d| details(d, Json::from)),
        Kind::Object => client
            .get_struct_details::<StructValue>(key, ctx, options)
            .await
            .map(|d| details(d, |s| to_json(&Value::Struct(s)))),
    };
    Outcome::of(case, result)
}

/// One evaluation of a provider that is not registered (the SDK registers a provider only after
/// `initialize`, so a NOT_READY provider can only be asked directly).
async fn through_provider(
    provider: &LockstepProvider,
    case: &Case,
    ctx: &EvaluationContext,
) -> Outcome {
    let key = case.key.as_str();
    let wrap = |value: Json,
                reason: Option<EvaluationReason>,
                variant: Option<String>,
                metadata: Option<FlagMetadata>| EvaluationDetails {
        flag_key: key.to_owned(),
        value,
        reason,
        variant,
        flag_metadata: metadata.unwrap_or_default(),
    };
    let result: Result<_, EvaluationError> = match case.kind {
        Kind::Boolean => provider
            .resolve_bool_value(key, ctx)
            .await
            .map(|d| wrap(Json::Bool(d.value), d.reason, d.variant, d.flag_metadata)),
        Kind::String => provider
            .resolve_string_value(key, ctx)
            .await
            .map(|d| wrap(Json::String(d.value), d.reason, d.variant, d.flag_metadata)),
        Kind::Integer => provider
            .resolve_int_value(key, ctx)
            .await
            .map(|d| wrap(Json::from(d.value), d.reason, d.variant, d.flag_metadata)),
        Kind::Float => provider
            .resolve_float_value(key, ctx)
            .await
            .map(|d| wrap(Json::from(d.value), d.reason, d.variant, d.flag_metadata)),
        Kind::Object => provider.resolve_struct_value(key, ctx).await.map(|d| {
            wrap(
                to_json(&Value::Struct(d.value)),
                d.reason,
                d.variant,
                d.flag_metadata,
            )
        }),
    };
    Outcome::of(case, result)
}

/// Records the stages a hook ran.
struct Recorder {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn record(&self, stage: &str) {
        self.log
            .lock()
            .expect("not poisoned")
            .push(format!("{}:{stage}", self.name));
    }
}

#[async_trait]
impl Hook for Recorder {
    async fn before<'a>(
        &self,
        _context: &HookContext<'a>,
        _hints: Option<&'a HookHints>,
    ) -> Result<Option<EvaluationContext>, EvaluationError> {
        self.record("before");
        Ok(None)
    }

    async fn after<'a>(
        &self,
        _context: &HookContext<'a>,
        _details: &EvaluationDetails<Value>,
        _hints: Option<&'a HookHints>,
    ) -> Result<(), EvaluationError> {
        self.record("after");
        Ok(())
    }

    async fn error<'a>(
        &self,
        _context: &HookContext<'a>,
        _error: &EvaluationError,
        _hints: Option<&'a HookHints>,
    ) {
        self.record("error");
    }

    async fn finally<'a>(
        &self,
        _context: &HookContext<'a>,
        _details: &EvaluationDetails<Value>,
        _hints: Option<&'a HookHints>,
    ) {
        self.record("finally");
    }
}

#[derive(World)]
#[world(init = Self::new)]
struct SpecWorld {
    api: OpenFeature,
    /// The provider over the typed flags (the API's default provider).
    provider: Option<LockstepProvider>,
    /// The provider over the flags with targeting (bound to [`TARGETING_DOMAIN`]), in the same
    /// state as `provider`.
    targeting: Option<LockstepProvider>,
    /// Whether `provider` is the API's provider (false for a NOT_READY one).
    registered: bool,
    case: Option<Case>,
    /// The evaluation context the context steps build (empty unless one does).
    context: EvaluationContext,
    outcome: Option<Outcome>,
    options: Option<EvaluationOptions>,
    hook_log: Arc<Mutex<Vec<String>>>,
    /// Whether an asynchronous evaluation completed (on its own task, within its timeout).
    completed: Option<bool>,
}

impl std::fmt::Debug for SpecWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpecWorld")
            .field("provider", &self.provider)
            .field("targeting", &self.targeting)
            .field("registered", &self.registered)
            .field("case", &self.case)
            .field("context", &self.context)
            .field("outcome", &self.outcome)
            .field("hook_log", &self.hook_log)
            .field("completed", &self.completed)
            .finish_non_exhaustive()
    }
}

impl SpecWorld {
    fn new() -> Self {
        Self {
            api: OpenFeature::default(),
            provider: None,
            targeting: None,
            registered: false,
            case: None,
            context: EvaluationContext::default(),
            outcome: None,
            options: None,
            hook_log: Arc::new(Mutex::new(Vec::new())),
            completed: None,
        }
    }

    fn case(&self) -> Case {
        self.case.clone().expect("a flag step comes first")
    }

    fn outcome(&self) -> &Outcome {
        self.outcome.as_ref().expect("the flag was evaluated")
    }

    /// A client of the domain whose document holds the flag.
    fn client(&self, case: &Case) -> Client {
        if is_targeted(&case.key) {
            self.api.create_named_client(TARGETING_DOMAIN)
        } else {
            self.api.create_client()
        }
    }

    async fn evaluate(&self, options: Option<&EvaluationOptions>) -> Outcome {
        let case = self.case();
        let provider = if is_targeted(&case.key) {
            &self.targeting
        } else {
            &self.provider
        };
        match (provider, self.registered) {
            (Some(_), true) => {
                through_client(&self.client(&case), &case, &self.context, options).await
            }
            (Some(provider), false) => through_provider(provider, &case, &self.context).await,
            (None, _) => panic!("no provider"),
        }
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A provider in `state` over one configuration profile holding `content`.
async fn provider_in(state: &str, content: &str) -> LockstepProvider {
    let clock = ManualClock::new(t("2026-01-01T01:00:00Z"));
    let (source, handle) = MemorySource::new();
    if state != "error" {
        handle.publish("v1", content);
    }
    let options = CacheOptions {
        catalog: FlagCatalog::new(vec![]).expect("an empty catalog"),
        overrides: Overrides::none(),
        settings: Settings::default(),
        clock: Arc::new(clock.clone()),
    };
    let cache = FlagCache::new(Box::new(source), options);
    let provider = if state == "not ready" {
        LockstepProvider::initializing(cache)
    } else {
        LockstepProvider::new(Arc::new(cache.await))
    };
    if state == "stale" {
        // Past P, the source failing: the next read keeps last-known-good, degraded.
        handle.set_failing(true);
        clock.advance(TimeDelta::seconds(46));
        provider.cache().expect("built").read().await;
    }
    provider
}

#[given(regex = r"^a (stable|not ready|error|stale) provider$")]
async fn a_provider(world: &mut SpecWorld, state: String) {
    let provider = provider_in(&state, FLAGS).await;
    let targeting = provider_in(&state, TARGETING_FLAGS).await;
    world.registered = state != "not ready";
    if world.registered {
        world.api.set_provider(provider.clone()).await;
        world
            .api
            .set_named_provider(TARGETING_DOMAIN, targeting.clone())
            .await;
    }
    world.provider = Some(provider);
    world.targeting = Some(targeting);
}

#[given(
    regex = r#"^an? (Boolean|String|Integer|Float|Object)-flag with key "([^"]*)" and a fallback value "(.*)"$"#
)]
fn a_flag(world: &mut SpecWorld, kind: String, key: String, fallback: String) {
    let kind = Kind::parse(&kind);
    world.case = Some(Case {
        kind,
        key,
        fallback: kind.value(&fallback),
    });
}

#[given(
    regex = r#"^a context containing a key "([^"]*)", with type "(String|Integer|Float|Boolean)" and with value "(.*)"$"#
)]
fn a_context_field(world: &mut SpecWorld, key: String, kind: String, value: String) {
    let field = match kind.as_str() {
        "String" => EvaluationContextFieldValue::String(value),
        "Integer" => EvaluationContextFieldValue::Int(value.parse().expect("an integer")),
        "Float" => EvaluationContextFieldValue::Float(value.parse().expect("a number")),
        _ => EvaluationContextFieldValue::Bool(value.parse().expect("true or false")),
    };
    world.context.add_custom_field(key, field);
}

/// The Rust SDK's context fields have no null: a struct holding JSON `null` is the one way to
/// hand a provider a null, and Lockstep's provider reads it as `null` (`src/context.rs`).
#[given(regex = r#"^a context containing a key "([^"]*)" with null value$"#)]
fn a_null_context_field(world: &mut SpecWorld, key: String) {
    world
        .context
        .add_custom_field(key, EvaluationContextFieldValue::new_struct(Json::Null));
}

#[given("evaluation options containing specific hooks")]
fn options_with_hooks(world: &mut SpecWorld) {
    let log = world.hook_log.clone();
    world.options = Some(
        EvaluationOptions::default()
            .with_hook(Recorder {
                name: "first",
                log: log.clone(),
            })
            .with_hook(Recorder {
                name: "second",
                log,
            }),
    );
}

#[when("the flag was evaluated with details")]
async fn evaluated(world: &mut SpecWorld) {
    world.outcome = Some(world.evaluate(None).await);
}

#[when("the flag was evaluated with details using the evaluation options")]
async fn evaluated_with_options(world: &mut SpecWorld) {
    let options = world
        .options
        .clone()
        .expect("evaluation options were given");
    world.outcome = Some(world.evaluate(Some(&options)).await);
}

#[when("the flag was evaluated with details asynchronously")]
async fn evaluated_asynchronously(world: &mut SpecWorld) {
    assert!(world.registered, "a registered provider");
    let case = world.case();
    let client = world.client(&case);
    let context = world.context.clone();
    let task = tokio::spawn(async move { through_client(&client, &case, &context, None).await });
    match tokio::time::timeout(Duration::from_secs(10), task).await {
        Ok(Ok(outcome)) => {
            world.outcome = Some(outcome);
            world.completed = Some(true);
        }
        Ok(Err(_)) | Err(_) => world.completed = Some(false),
    }
}

#[then("the evaluation should complete without blocking")]
fn completed_without_blocking(world: &mut SpecWorld) {
    assert_eq!(
        world.completed,
        Some(true),
        "the evaluation ran on its own task and finished within 10 s"
    );
}

#[then(regex = r#"^the resolved details value should be "(.*)"$"#)]
fn value_is(world: &mut SpecWorld, expected: String) {
    let expected = world.case().kind.value(&expected);
    assert_eq!(world.outcome().value, expected);
}

#[then(regex = r#"^the reason should be "(.*)"$"#)]
fn reason_is(world: &mut SpecWorld, expected: String) {
    assert_eq!(world.outcome().reason.as_deref(), Some(expected.as_str()));
}

#[then(regex = r#"^the error-code should be "(.*)"$"#)]
fn error_code_is(world: &mut SpecWorld, expected: String) {
    assert_eq!(
        world.outcome().error_code.as_deref(),
        Some(expected.as_str())
    );
}

#[then(regex = r#"^the variant should be "(.*)"$"#)]
fn variant_is(world: &mut SpecWorld, expected: String) {
    assert_eq!(world.outcome().variant.as_deref(), Some(expected.as_str()));
}

#[then(regex = r#"^the flag key should be "(.*)"$"#)]
fn flag_key_is(world: &mut SpecWorld, expected: String) {
    assert_eq!(world.outcome().flag_key, expected);
}

#[then("the resolved metadata should contain")]
fn metadata_contains(world: &mut SpecWorld, step: &Step) {
    let table = step.table.as_ref().expect("a table of metadata");
    let mut rows = table.rows.iter();
    assert_eq!(
        rows.next().map(Vec::as_slice),
        Some(
            &[
                "key".to_owned(),
                "metadata_type".to_owned(),
                "value".to_owned()
            ][..]
        )
    );
    for row in rows {
        let [key, kind, value] = row.as_slice() else {
            panic!("a row of three cells: {row:?}");
        };
        let expected = match kind.as_str() {
            "String" => FlagMetadataValue::String(value.clone()),
            "Integer" => FlagMetadataValue::Int(value.parse().expect("an integer")),
            "Float" => FlagMetadataValue::Float(value.parse().expect("a number")),
            "Boolean" => FlagMetadataValue::Bool(value.parse().expect("true or false")),
            other => panic!("no metadata type {other:?}"),
        };
        assert_eq!(
            world.outcome().metadata.values.get(key),
            Some(&expected),
            "metadata {key}"
        );
    }
}

#[then(regex = r#"^the provider status should be "(.*)"$"#)]
fn status_is(world: &mut SpecWorld, expected: String) {
    let name =
        |provider: &Option<LockstepProvider>| match provider.as_ref().expect("a provider").status()
        {
            ProviderStatus::NotReady => "NOT_READY",
            ProviderStatus::Ready => "READY",
            ProviderStatus::Error => "ERROR",
            ProviderStatus::STALE => "STALE",
        };
    assert_eq!(name(&world.provider), expected);
    assert_eq!(
        name(&world.targeting),
        expected,
        "the targeting profile's provider"
    );
}

#[then("the specified hooks should execute during evaluation")]
fn hooks_ran(world: &mut SpecWorld) {
    assert_eq!(world.outcome().error_code, None, "a successful evaluation");
    let log = world.hook_log.lock().expect("not poisoned").clone();
    for hook in ["first", "second"] {
        for stage in ["before", "after", "finally"] {
            let entry = format!("{hook}:{stage}");
            assert!(log.contains(&entry), "{entry} missing from {log:?}");
        }
    }
    assert!(!log.iter().any(|e| e.ends_with(":error")), "{log:?}");
}

#[then("the hook order should be maintained")]
fn hook_order(world: &mut SpecWorld) {
    // Requirement 4.4.2: before hooks in order, after and finally hooks in reverse.
    let log = world.hook_log.lock().expect("not poisoned").clone();
    assert_eq!(
        log,
        [
            "first:before",
            "second:before",
            "second:after",
            "first:after",
            "second:finally",
            "first:finally"
        ]
    );
}

/// The suite as the `gherkin` crate reads it. In a table cell, Gherkin's own grammar unescapes
/// `\\`, `\|` and `\n` and keeps any other backslash; the `gherkin` crate refuses other
/// sequences (the suite's object cells use `\"`). Doubling those backslashes gives the cells
/// Gherkin's reference parser reads (`{\"a\": 1}`, unescaped by the steps like every
/// implementation of the suite does).
fn for_gherkin_crate(feature: &str) -> String {
    let mut out = String::with_capacity(feature.len() + 256);
    for line in feature.split_inclusive('\n') {
        if !line.trim_start().starts_with('|') {
            out.push_str(line);
            continue;
        }
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '\\' {
                match chars.peek() {
                    Some('\\' | '|' | 'n') => out.extend(chars.next()),
                    _ => out.push('\\'),
                }
            }
        }
    }
    out
}

#[tokio::main]
async fn main() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("lockstep-openfeature");
    std::fs::create_dir_all(&dir).expect("the target's temporary directory");
    let path = dir.join("evaluation_v2.feature");
    std::fs::write(&path, for_gherkin_crate(FEATURE)).expect("the suite, rewritten");

    let writer = SpecWorld::cucumber()
        .fail_on_skipped()
        // Not the process's arguments: `cargo test` passes libtest's (a name filter,
        // --nocapture) to every test binary. What runs is decided here, by EXCLUDED.
        .with_default_cli()
        .filter_run(path, |_, _, scenario| match exclusion(scenario) {
            Some(e) => {
                e.matched.fetch_add(1, Ordering::Relaxed);
                false
            }
            None => true,
        })
        .await;

    let not_run: usize = EXCLUDED
        .iter()
        .map(|e| e.matched.load(Ordering::Relaxed))
        .sum();
    println!("\nNot run: {not_run} scenarios of evaluation_v2.feature (see the crate README):");
    for e in &EXCLUDED {
        let example = e
            .example
            .map(|x| format!(", example {x:?}"))
            .unwrap_or_default();
        println!(
            "  - {}{example} ({}): {}",
            e.scenario,
            e.matched.load(Ordering::Relaxed),
            e.reason
        );
    }
    let stale: Vec<&str> = EXCLUDED
        .iter()
        .filter(|e| e.matched.load(Ordering::Relaxed) == 0)
        .map(|e| e.scenario)
        .collect();
    if !stale.is_empty() {
        eprintln!("exclusions that match no scenario (update EXCLUDED and the README): {stale:?}");
        std::process::exit(1);
    }
    if writer.execution_has_failed() {
        eprintln!("evaluation_v2.feature: a scenario that runs failed");
        std::process::exit(1);
    }
}
