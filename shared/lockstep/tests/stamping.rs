//! Golden tests of deploy-time stamping in both formats, and a round trip through the flag
//! library. `LOCKSTEP_UPDATE_GOLDEN=1` rewrites the golden files (review the diff).

use chrono::{DateTime, Utc};
use lockstep::cache::CacheOptions;
use lockstep::catalog::is_valid_flag_name;
use lockstep::journey::JourneyKey;
use lockstep::memory::MemorySource;
use lockstep::stamp::{retrieval_form, stamp_with, Change, StampOptions, Stamped};
use lockstep::{FlagCache, FlagCatalog, FlagDecl, ManualClock, Overrides, Settings};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Stamping with a fixed journey key when one is made, so the golden files are reproducible.
fn stamp(
    content: &[u8],
    previous: Option<&[u8]>,
    at: DateTime<Utc>,
    duration: Duration,
) -> Result<Stamped, lockstep::stamp::StampError> {
    let options = StampOptions {
        new_key: Some(JourneyKey::from_bytes([42; 32])),
        ..StampOptions::default()
    };
    stamp_with(content, previous, at, duration, &options)
}

fn golden(name: &str, actual: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("LOCKSTEP_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read(&path).unwrap_or_else(|_| {
        panic!(
            "{} missing: run with LOCKSTEP_UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(
        String::from_utf8_lossy(actual),
        String::from_utf8_lossy(&expected),
        "{name} differs from its golden file"
    );
}

const FREEFORM_V1: &str = r#"{"alpha": true, "beta": false, "gamma": true}"#;
const FREEFORM_V2: &str = r#"{"alpha": true, "beta": true, "gamma": true}"#;
const STORED_V1: &str = r#"{"version": "1",
  "flags": {"alpha": {"name": "Alpha"}, "beta": {"name": "Beta", "attributes": {"owner": {"constraints": {"type": "string"}}}}, "gamma": {"name": "Gamma"}},
  "values": {"alpha": {"enabled": true}, "beta": {"enabled": false, "owner": "team-b"}, "gamma": {"enabled": true}}}"#;
const STORED_V2: &str = r#"{"version": "1",
  "flags": {"alpha": {"name": "Alpha"}, "beta": {"name": "Beta", "attributes": {"owner": {"constraints": {"type": "string"}}}}, "gamma": {"name": "Gamma"}},
  "values": {"alpha": {"enabled": true}, "beta": {"enabled": true, "owner": "team-b"}, "gamma": {"enabled": true}}}"#;

const T1: &str = "2026-11-21T10:00:00Z";
const T2: &str = "2026-11-21T11:00:00Z";

fn stamp_of(stamped: &lockstep::stamp::Stamped, flag: &str) -> (Change, DateTime<Utc>, u64) {
    let (change, s) = stamped.flags[flag];
    (change, s.at, s.deployment_duration.as_secs())
}

#[test]
fn freeform_first_deployment_then_one_change_then_an_identical_redeploy() {
    let first = stamp(FREEFORM_V1.as_bytes(), None, t(T1), Duration::from_secs(60)).unwrap();
    let second = stamp(
        FREEFORM_V2.as_bytes(),
        Some(&first.content),
        t(T2),
        Duration::ZERO,
    )
    .unwrap();
    let third = stamp(
        &second.content,
        Some(&second.content),
        t("2026-11-21T12:00:00Z"),
        Duration::ZERO,
    )
    .unwrap();

    golden("freeform-first.json", &first.content);
    golden("freeform-second.json", &second.content);
    for flag in ["alpha", "beta", "gamma"] {
        assert_eq!(stamp_of(&first, flag), (Change::New, t(T1), 60));
    }
    assert_eq!(
        stamp_of(&second, "alpha"),
        (Change::Kept, t(T1), 60),
        "unchanged flags keep T and Δ"
    );
    assert_eq!(stamp_of(&second, "beta"), (Change::Changed, t(T2), 0));
    assert_eq!(stamp_of(&second, "gamma"), (Change::Kept, t(T1), 60));
    for flag in ["alpha", "beta", "gamma"] {
        assert_eq!(
            third.flags[flag].1, second.flags[flag].1,
            "a redeploy of identical content moves no stamp"
        );
        assert_eq!(third.flags[flag].0, Change::Kept);
    }
}

#[test]
fn feature_flag_stored_format_is_stamped_and_stays_valid_for_appconfig() {
    let first = stamp(STORED_V1.as_bytes(), None, t(T1), Duration::from_secs(1200)).unwrap();
    let second = stamp(
        STORED_V2.as_bytes(),
        Some(&first.content),
        t(T2),
        Duration::ZERO,
    )
    .unwrap();
    let third = stamp(
        &second.content,
        Some(&second.content),
        t("2026-11-21T12:00:00Z"),
        Duration::ZERO,
    )
    .unwrap();

    golden("feature-flags-first.json", &first.content);
    golden("feature-flags-second.json", &second.content);
    assert_eq!(stamp_of(&second, "alpha"), (Change::Kept, t(T1), 1200));
    assert_eq!(stamp_of(&second, "beta"), (Change::Changed, t(T2), 0));
    assert_eq!(stamp_of(&second, "gamma"), (Change::Kept, t(T1), 1200));
    for flag in ["alpha", "beta", "gamma"] {
        assert_eq!(third.flags[flag].1, second.flags[flag].1);
    }

    // AppConfig's own rules: every key matches the pattern, every attribute set is declared, and
    // the metadata flag is enabled.
    let doc: Value = serde_json::from_slice(&second.content).unwrap();
    let flags = doc["flags"].as_object().unwrap();
    let values = doc["values"].as_object().unwrap();
    for (name, value) in values {
        assert!(is_valid_flag_name(name), "{name}");
        let declared = &flags[name]["attributes"];
        for attribute in value
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "enabled")
        {
            assert!(
                declared.get(attribute).is_some(),
                "{name}.{attribute} is set but not declared"
            );
        }
    }
    assert_eq!(values["lockstepMetadata"]["enabled"], true);
    assert_eq!(
        values["beta"]["owner"], "team-b",
        "other attributes survive"
    );
}

#[test]
fn invalid_content_is_blocked_with_a_message_naming_the_problem() {
    let cases: &[(&str, &str)] = &[
        ("{nope", "not JSON"),
        ("[1]", "JSON object"),
        (r#"{"Alpha": true}"#, "must match"),
        (r#"{"alpha": "yes"}"#, "true or false"),
        (r#"{"version": "2", "flags": {}}"#, "version"),
        (
            r#"{"version": "1", "flags": {"Bad Key": {}}}"#,
            "must match",
        ),
        (
            r#"{"version": "1", "flags": {"a": {}}, "values": {"b": {"enabled": true}}}"#,
            "no declaration",
        ),
    ];
    for (content, expected) in cases {
        let err = lockstep::error_chain(
            &stamp(content.as_bytes(), None, t(T1), Duration::ZERO).unwrap_err(),
        );
        assert!(err.contains(expected), "{content}: {err}");
    }
}

#[tokio::test]
async fn stamped_output_read_by_the_library_gives_the_promised_consistent_at() {
    let first = stamp(FREEFORM_V1.as_bytes(), None, t(T1), Duration::from_secs(60)).unwrap();
    let second = stamp(
        FREEFORM_V2.as_bytes(),
        Some(&first.content),
        t(T2),
        Duration::ZERO,
    )
    .unwrap();
    let stored = stamp(STORED_V1.as_bytes(), None, t(T1), Duration::from_secs(1200)).unwrap();
    let catalog = FlagCatalog::new(vec![
        FlagDecl::public("alpha"),
        FlagDecl::public("beta"),
        FlagDecl::public("gamma"),
    ])
    .unwrap();

    for (content, expected) in [
        // T + Δ + P + ε with P = 45 s, ε = 5 s.
        (
            second.content.clone(),
            [
                ("alpha", "2026-11-21T10:01:50Z"),
                ("beta", "2026-11-21T11:00:50Z"),
            ],
        ),
        (
            retrieval_form(&stored.content).unwrap(),
            [
                ("alpha", "2026-11-21T10:20:50Z"),
                ("beta", "2026-11-21T10:20:50Z"),
            ],
        ),
    ] {
        let (source, handle) = MemorySource::new();
        handle.publish("1", content);
        let options = CacheOptions {
            catalog: catalog.clone(),
            overrides: Overrides::none(),
            settings: Settings::default(),
            clock: Arc::new(ManualClock::new(t("2026-11-21T11:00:10Z"))),
        };
        let view = FlagCache::new(Box::new(source), options).await.read().await;
        for (flag, at) in expected {
            assert_eq!(
                view.status(flag).unwrap().consistent_at,
                Some(t(at)),
                "{flag}"
            );
        }
    }
}
