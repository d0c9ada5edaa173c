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

fn stamp_opts(
    content: &str,
    previous: Option<&[u8]>,
    at: &str,
    options: StampOptions,
) -> Result<Stamped, lockstep::stamp::StampError> {
    stamp_with(
        content.as_bytes(),
        previous,
        t(at),
        Duration::ZERO,
        &options,
    )
}

fn parsed(stamped: &Stamped) -> lockstep::document::Document {
    let content = if stamped.content.starts_with(b"{\n  \"version\"") {
        retrieval_form(&stamped.content).unwrap()
    } else {
        stamped.content.clone()
    };
    lockstep::document::parse(&content).unwrap()
}

#[test]
fn a_journey_key_is_made_once_kept_across_deployments_and_rotated_on_request() {
    use lockstep::stamp::KeyChange;
    let first = stamp_opts(FREEFORM_V1, None, T1, StampOptions::default()).unwrap();
    let second = stamp_opts(
        FREEFORM_V2,
        Some(&first.content),
        T2,
        StampOptions::default(),
    )
    .unwrap();
    let rotated = stamp_opts(
        FREEFORM_V1,
        Some(&second.content),
        "2026-11-21T12:00:00Z",
        StampOptions {
            rotate_key: true,
            ..StampOptions::default()
        },
    )
    .unwrap();
    let again = stamp_opts(
        FREEFORM_V2,
        Some(&rotated.content),
        "2026-11-21T13:00:00Z",
        StampOptions {
            rotate_key: true,
            ..StampOptions::default()
        },
    )
    .unwrap();

    let keys = |s: &Stamped| parsed(s).journey_keys;
    assert_eq!(
        (first.key, second.key, rotated.key),
        (KeyChange::Created, KeyChange::Kept, KeyChange::Rotated)
    );
    assert_eq!(keys(&first).len(), 1);
    assert_eq!(keys(&second), keys(&first));
    // The new key signs; the one it replaced still verifies; the one before that is gone.
    assert_eq!(keys(&rotated)[1], keys(&first)[0]);
    assert_ne!(keys(&rotated)[0], keys(&first)[0]);
    assert_eq!(
        keys(&again),
        vec![keys(&again)[0].clone(), keys(&rotated)[0].clone()]
    );
    // Fresh keys are random: two first deployments never share one.
    let other = stamp_opts(FREEFORM_V1, None, T1, StampOptions::default()).unwrap();
    assert_ne!(keys(&other), keys(&first));
}

#[test]
fn a_drain_is_written_on_the_flags_switched_off_and_kept_while_they_stay_off() {
    let on = r#"{"alpha": true, "beta": true}"#;
    let off = r#"{"alpha": false, "beta": true}"#;
    let both_off = r#"{"alpha": false, "beta": false}"#;
    let drain = StampOptions {
        drain: Some(Duration::from_secs(300)),
        ..StampOptions::default()
    };
    let first = stamp_opts(on, None, T1, StampOptions::default()).unwrap();
    let switched = stamp_opts(off, Some(&first.content), T2, drain.clone()).unwrap();
    assert_eq!(
        switched.drains,
        [("alpha".to_owned(), Duration::from_secs(300))].into()
    );
    let doc = parsed(&switched);
    assert_eq!(doc.flags["alpha"].drain, Some(Duration::from_secs(300)));
    assert_eq!(doc.flags["beta"].drain, None);

    // Beta switched off later without a drain: a kill switch; alpha keeps its stamp and drain.
    let later = stamp_opts(
        both_off,
        Some(&switched.content),
        "2026-11-21T12:00:00Z",
        StampOptions::default(),
    )
    .unwrap();
    let doc = parsed(&later);
    assert_eq!(doc.flags["alpha"].drain, Some(Duration::from_secs(300)));
    assert_eq!(doc.flags["alpha"].stamp.unwrap().at, t(T2));
    assert_eq!(doc.flags["beta"].drain, None);

    // Switched back on: no drain left anywhere on it.
    let back_on = stamp_opts(
        on,
        Some(&later.content),
        "2026-11-21T13:00:00Z",
        StampOptions::default(),
    )
    .unwrap();
    assert!(back_on.drains.is_empty());
}

#[test]
fn a_drain_on_a_deployment_that_switches_nothing_off_is_refused() {
    let first = stamp_opts(FREEFORM_V1, None, T1, StampOptions::default()).unwrap();
    let drain = StampOptions {
        drain: Some(Duration::from_secs(300)),
        ..StampOptions::default()
    };
    // V2 switches beta on, nothing off.
    let err = stamp_opts(FREEFORM_V2, Some(&first.content), T2, drain.clone()).unwrap_err();
    assert!(
        matches!(err, lockstep::stamp::StampError::DrainWithoutSwitchOff),
        "{err}"
    );
    let too_long = StampOptions {
        drain: Some(Duration::from_secs(86_401)),
        ..StampOptions::default()
    };
    let err = stamp_opts(FREEFORM_V1, Some(&first.content), T2, too_long).unwrap_err();
    assert!(matches!(err, lockstep::stamp::StampError::Drain), "{err}");
}

#[test]
fn the_feature_flag_format_carries_drains_and_keys_as_attributes() {
    let first = stamp_opts(STORED_V2, None, T1, StampOptions::default()).unwrap();
    let drain = StampOptions {
        drain: Some(Duration::from_secs(120)),
        ..StampOptions::default()
    };
    let switched = stamp_opts(STORED_V1, Some(&first.content), T2, drain).unwrap();
    let text = String::from_utf8(switched.content.clone()).unwrap();
    assert!(
        text.contains("beta=2026-11-21T11:00:00.000Z/0/120"),
        "{text}"
    );
    let doc = parsed(&switched);
    assert_eq!(doc.flags["beta"].drain, Some(Duration::from_secs(120)));
    assert_eq!(doc.journey_keys, parsed(&first).journey_keys);
    assert_eq!(doc.journey_keys.len(), 1);
}

#[test]
fn stamping_again_keeps_the_drain_the_pipeline_wrote() {
    // `lockstep deploy --drain` stamps, then the AppConfig extension stamps the same content
    // again with the deployed content as previous: the drain must survive.
    let on = r#"{"alpha": true, "beta": true}"#;
    let first = stamp_opts(on, None, T1, StampOptions::default()).unwrap();
    let drain = StampOptions {
        drain: Some(Duration::from_secs(300)),
        ..StampOptions::default()
    };
    let by_pipeline = stamp_opts(
        r#"{"alpha": false, "beta": true}"#,
        Some(&first.content),
        T2,
        drain,
    )
    .unwrap();
    let by_extension = stamp_with(
        &by_pipeline.content,
        Some(&first.content),
        t(T2) + chrono::TimeDelta::milliseconds(300),
        Duration::ZERO,
        &StampOptions::default(),
    )
    .unwrap();
    assert_eq!(
        parsed(&by_extension).flags["alpha"].drain,
        Some(Duration::from_secs(300))
    );
    assert_eq!(
        parsed(&by_extension).journey_keys,
        parsed(&first).journey_keys
    );
}

/// `lockstep deploy --rotate-journey-key` stamps `[new, current]`; the AppConfig extension then
/// stamps that content again with the deployed content as previous.
fn rotated_by_pipeline_then_by_extension() -> (Stamped, Stamped, Stamped) {
    let deployed = stamp_opts(FREEFORM_V1, None, T1, StampOptions::default()).unwrap();
    let by_pipeline = stamp_opts(
        FREEFORM_V2,
        Some(&deployed.content),
        T2,
        StampOptions {
            rotate_key: true,
            new_key: Some(JourneyKey::from_bytes([9; 32])),
            ..StampOptions::default()
        },
    )
    .unwrap();
    let by_extension = stamp_with(
        &by_pipeline.content,
        Some(&deployed.content),
        t(T2) + chrono::TimeDelta::milliseconds(300),
        Duration::from_secs(60),
        &StampOptions::default(),
    )
    .unwrap();
    (deployed, by_pipeline, by_extension)
}

#[test]
fn a_key_rotated_by_the_pipeline_survives_the_extensions_stamping() {
    use lockstep::stamp::KeyChange;
    let (deployed, by_pipeline, by_extension) = rotated_by_pipeline_then_by_extension();

    let keys = parsed(&by_extension).journey_keys;
    assert_eq!(by_extension.key, KeyChange::Rotated);
    assert_eq!(
        keys,
        parsed(&by_pipeline).journey_keys,
        "the rotation is kept"
    );
    assert_eq!(keys[0], JourneyKey::from_bytes([9; 32]));
    assert_eq!(keys[1], parsed(&deployed).journey_keys[0]);
    // The key is introduced by the deployment that is actually made: the extension's stamp.
    let introduced = parsed(&by_extension).journey_key_stamp.unwrap();
    assert_eq!(introduced.at, t(T2) + chrono::TimeDelta::milliseconds(300));
    assert_eq!(introduced.deployment_duration, Duration::from_secs(60));

    // Stamped once more (a later deployment that does not rotate): kept, with its stamp.
    let later = stamp_opts(
        FREEFORM_V1,
        Some(&by_extension.content),
        "2026-11-21T12:00:00Z",
        StampOptions::default(),
    )
    .unwrap();
    assert_eq!(later.key, KeyChange::Kept);
    assert_eq!(parsed(&later).journey_keys, keys);
    assert_eq!(parsed(&later).journey_key_stamp, Some(introduced));
}

#[test]
fn keys_the_content_carries_that_are_no_rotation_of_the_deployed_ones_are_ignored() {
    use lockstep::stamp::KeyChange;
    let deployed = stamp_opts(FREEFORM_V1, None, T1, StampOptions::default()).unwrap();
    let current = parsed(&deployed).journey_keys[0].clone();
    let (x, y) = (
        JourneyKey::from_bytes([1; 32]),
        JourneyKey::from_bytes([2; 32]),
    );
    let with_keys = |keys: &[&JourneyKey]| {
        let texts: Vec<String> = keys.iter().map(|k| k.to_text()).collect();
        serde_json::json!({"alpha": true, "beta": true, "gamma": true,
            "lockstepMetadata": {"journeyKeys": texts}})
        .to_string()
    };
    // Another environment's key; two foreign keys; the deployed key demoted behind another
    // one is a rotation only when that other one is new and first.
    for carried in [
        with_keys(&[&x]),
        with_keys(&[&x, &y]),
        with_keys(&[&current, &x]),
        with_keys(&[]),
    ] {
        let stamped = stamp_opts(
            &carried,
            Some(&deployed.content),
            T2,
            StampOptions::default(),
        )
        .unwrap();
        assert_eq!(stamped.key, KeyChange::Kept, "{carried}");
        assert_eq!(
            parsed(&stamped).journey_keys,
            vec![current.clone()],
            "{carried}"
        );
    }
}

#[test]
fn a_key_rotated_in_verifies_at_once_but_signs_only_once_every_instance_holds_it() {
    use lockstep::consistency::Window;
    use lockstep::journey;
    use lockstep::snapshot::Snapshot;
    let (deployed, _, by_extension) = rotated_by_pipeline_then_by_extension();
    let window = Window {
        poll_interval: Duration::from_secs(45),
        epsilon: Duration::from_secs(5),
    };
    let catalog = FlagCatalog::new(vec![FlagDecl::public("alpha")]).unwrap();
    let snapshot = |stamped: &Stamped| {
        Snapshot::from_document(
            "v".into(),
            &parsed(stamped),
            &catalog,
            &Overrides::none(),
            window,
        )
    };
    let (old, new) = (snapshot(&deployed), snapshot(&by_extension));
    // T + Δ + P + ε of the deployment that rotated the key in: 10:00:00.3 + 60 + 45 + 5 s.
    let signs_at = t(T2) + chrono::TimeDelta::milliseconds(300 + 110_000);
    let ms = |at: DateTime<Utc>| at.timestamp_millis();

    let before = journey::issue(&new, ms(signs_at) - 1).unwrap();
    let after = journey::issue(&new, ms(signs_at)).unwrap();

    assert_eq!(
        new.signing_key(ms(signs_at) - 1),
        Some(&new.journey_keys()[1]),
        "the key it replaced signs while an instance may still hold the old content"
    );
    assert_eq!(new.signing_key(ms(signs_at)), Some(&new.journey_keys()[0]));
    assert!(
        journey::verify(&before, old.journey_keys()),
        "an instance still on the old content accepts what updated instances sign"
    );
    assert!(journey::verify(&before, new.journey_keys()));
    assert!(journey::verify(&after, new.journey_keys()));
    assert!(!journey::verify(&after, old.journey_keys()));
}

#[test]
fn a_drain_survives_an_unreadable_previous_content_and_the_key_is_not_replaced() {
    let on = r#"{"alpha": true, "beta": true}"#;
    let first = stamp_opts(on, None, T1, StampOptions::default()).unwrap();
    let by_pipeline = stamp_opts(
        r#"{"alpha": false, "beta": true}"#,
        Some(&first.content),
        T2,
        StampOptions {
            drain: Some(Duration::from_secs(300)),
            ..StampOptions::default()
        },
    )
    .unwrap();
    let unreadable = StampOptions {
        previous_unreadable: true,
        new_key: Some(JourneyKey::from_bytes([5; 32])),
        ..StampOptions::default()
    };

    let by_extension = stamp_opts(
        std::str::from_utf8(&by_pipeline.content).unwrap(),
        None,
        "2026-11-21T11:00:01Z",
        unreadable.clone(),
    )
    .unwrap();

    let doc = parsed(&by_extension);
    assert_eq!(
        by_extension.drains,
        [("alpha".to_owned(), Duration::from_secs(300))].into(),
        "a planned switch-off stays planned"
    );
    assert_eq!(doc.flags["alpha"].drain, Some(Duration::from_secs(300)));
    assert_eq!(
        doc.journey_keys,
        parsed(&first).journey_keys,
        "not replaced"
    );
    assert_eq!(by_extension.key, lockstep::stamp::KeyChange::Kept);
    // Every flag still gets this deployment's stamp: later than needed, never earlier.
    assert!(by_extension
        .flags
        .values()
        .all(|(change, s)| *change == Change::New && s.at == t("2026-11-21T11:00:01Z")));

    // Content that carries no keys cannot keep them: refused, not given a new key.
    let keyless =
        stamp_opts(r#"{"alpha": false, "beta": true}"#, None, T2, unreadable).unwrap_err();
    assert!(
        matches!(keyless, lockstep::stamp::StampError::KeysUnknown),
        "{keyless}"
    );
}
