use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn a_freeform_document_with_per_flag_stamps_parses() {
    let doc = parse(
        br#"{
          "isFeatureXEnabled": true,
          "useSubmissionsGsi": false,
          "lockstepMetadata": {
            "lastModifiedTimestamp": "2026-11-21T10:00:00Z",
            "deploymentDurationSeconds": 60,
            "flags": {"useSubmissionsGsi": {"lastModifiedTimestamp": "2026-11-20T08:00:00+00:00", "deploymentDurationSeconds": 1200}}
          }
        }"#,
    )
    .unwrap();

    assert_eq!(doc.format, Format::Freeform);
    let x = doc.flags["isFeatureXEnabled"];
    assert!(x.enabled);
    assert_eq!(x.stamp.unwrap().at, t("2026-11-21T10:00:00Z"));
    assert_eq!(
        x.stamp.unwrap().deployment_duration,
        Duration::from_secs(60)
    );
    let gsi = doc.flags["useSubmissionsGsi"];
    assert!(!gsi.enabled);
    assert_eq!(gsi.stamp.unwrap().at, t("2026-11-20T08:00:00Z"));
    assert_eq!(
        gsi.stamp.unwrap().deployment_duration,
        Duration::from_secs(1200)
    );
}

#[test]
fn a_feature_flag_document_keeps_its_stamps_on_the_metadata_flag() {
    let doc = parse(
        br#"{
          "isFeatureXEnabled": {"enabled": true, "owner": "team-x"},
          "useSubmissionsGsi": {"enabled": false},
          "lockstepMetadata": {
            "enabled": true,
            "lastModifiedTimestamp": "2026-11-21T10:00:00Z",
            "deploymentDurationSeconds": 0,
            "flagStamps": ["useSubmissionsGsi=2026-11-20T08:00:00.000Z/1800"]
          }
        }"#,
    )
    .unwrap();

    assert_eq!(doc.format, Format::FeatureFlags);
    assert!(doc.flags["isFeatureXEnabled"].enabled);
    assert_eq!(
        doc.flags["isFeatureXEnabled"].stamp.unwrap().at,
        t("2026-11-21T10:00:00Z")
    );
    let gsi = doc.flags["useSubmissionsGsi"].stamp.unwrap();
    assert_eq!(gsi.at, t("2026-11-20T08:00:00Z"));
    assert_eq!(gsi.deployment_duration, Duration::from_secs(1800));
}

#[test]
fn feature_flag_attributes_are_kept_and_the_metadata_entry_is_not() {
    let doc = parse(
        br#"{
          "banner": {"enabled": true, "value": "Summer sale", "maxItems": 3},
          "plain": {"enabled": false},
          "lockstepMetadata": {"enabled": true, "journeyKeys": []}
        }"#,
    )
    .unwrap();

    let banner = &doc.attributes["banner"];
    assert_eq!(banner.len(), 2, "every field but enabled: {banner:?}");
    assert_eq!(banner["value"], Value::from("Summer sale"));
    assert_eq!(banner["maxItems"], Value::from(3));
    assert!(!doc.attributes.contains_key("plain"));
    assert!(!doc.attributes.contains_key(METADATA_KEY));
    let freeform = parse(br#"{"a": true, "lockstepMetadata": {}}"#).unwrap();
    assert!(freeform.attributes.is_empty());
}

#[test]
fn content_without_metadata_is_valid_but_unstamped() {
    let doc = parse(br#"{"isFeatureXEnabled": true}"#).unwrap();
    assert_eq!(doc.profile_stamp, None);
    assert_eq!(doc.flags["isFeatureXEnabled"].stamp, None);
}

#[test]
fn invalid_content_is_rejected_with_a_reason() {
    let cases: &[(&[u8], &str)] = &[
        (b"{not json", "not JSON"),
        (b"[true]", "JSON object"),
        (br#"{"IsFeature": true}"#, "must match"),
        (br#"{"isFeatureXEnabled": "true"}"#, "true or false"),
        (br#"{"a": true, "b": {"enabled": true}}"#, "true or false"),
        (br#"{"a": {"enabled": "yes"}}"#, "boolean"),
        (br#"{"a": true, "lockstepMetadata": {"lastModifiedTimestamp": "yesterday"}}"#, "RFC 3339"),
        (br#"{"a": true, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:00:00Z", "deploymentDurationSeconds": -1}}"#, "whole"),
        (br#"{"a": true, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:00:00Z", "flags": {"b": {"lastModifiedTimestamp": "2026-11-21T10:00:00Z"}}}}"#, "does not contain"),
        (br#"{"a": true, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:00:00Z", "flags": {"a": {"lastModifiedTimestamp": "2026-11-22T10:00:00Z"}}}}"#, "later than"),
        (br#"{"a": {"enabled": true}, "lockstepMetadata": {"enabled": false}}"#, "must be enabled"),
        (br#"{"a": {"enabled": true}, "lockstepMetadata": {"enabled": true, "lastModifiedTimestamp": "2026-11-21T10:00:00Z", "flagStamps": ["a=2026-11-21T10:00:00Z"]}}"#, "name=T/seconds"),
        (br#"{"a": true, "lockstepMetadata": {"enabled": true}}"#, "different formats"),
    ];
    for (content, expected) in cases {
        let err = parse(content).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{} gave {err:?}, expected {expected:?}",
            String::from_utf8_lossy(content)
        );
    }
}
