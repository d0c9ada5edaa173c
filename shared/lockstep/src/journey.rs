//! Journey tokens (design rules 8 and 9): what `/config` told a client, carried back on its
//! feature calls in the `Lockstep-Journey` header.
//!
//! A token names the configuration the issuing instance served: its version, the profile stamp,
//! the moment of issue and, for each public flag, its value and its stamp T (Unix milliseconds).
//! It is opaque to clients and versioned (`v1.`), so its format can change:
//!
//! ```text
//! v1.<base64url(JSON payload)>.<base64url(HMAC-SHA256(key, "v1." + payload))>
//! ```
//!
//! The signature is made with the *journey key* carried in the stamped metadata
//! (`lockstepMetadata.journeyKeys`, written and kept by the stamping code like a stamp, rotated
//! on request; never exposed by `/config`). Content without a key issues unsigned tokens
//! (`v1.<payload>.`), which can still ask for a catch-up but never open a drain.
//!
//! What a token can do, and nothing else:
//! - **trigger a catch-up poll** (rule 8), signed or not: a stale instance polls before deciding,
//!   at most once per Q, never before the service's interval; the token never changes a value;
//! - **open a drain** (rule 9), only when its signature verifies with a key this instance holds:
//!   a request whose token was issued under the enabled value may finish its journey while the
//!   flag, switched off with a drain time, drains.
//!
//! A missing, malformed, oversized or future-dated token is "no token": the request is decided
//! exactly as without one. [`parse`] never panics on any input.

use crate::catalog::Visibility;
pub use crate::journey_key::{BadKey, JourneyKey, KEY_LEN};
use crate::snapshot::Snapshot;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeMap;

/// The request header that carries the token.
pub const HEADER: &str = "Lockstep-Journey";

/// The prefix of this token format.
pub const VERSION_PREFIX: &str = "v1.";

/// The longest token accepted (bytes); a longer header is "no token". A token for 64 public
/// flags is well under 8 KiB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// One public flag as the issuing instance served it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenFlag {
    /// The value served.
    #[serde(rename = "v")]
    pub value: bool,
    /// Its stamp T, Unix milliseconds; none for an unstamped or forced flag.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub stamp_ms: Option<i64>,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The configuration version served.
    #[serde(rename = "c")]
    pub version: String,
    /// The profile stamp T, Unix milliseconds.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub profile_stamp_ms: Option<i64>,
    /// When the token was issued (the issuing instance's clock), Unix milliseconds.
    #[serde(rename = "i")]
    pub issued_at_ms: i64,
    /// Every public flag.
    #[serde(rename = "f")]
    pub flags: BTreeMap<String, TokenFlag>,
}

/// A token as received: its claims and whether its signature verified with a key of the
/// snapshot it was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// What the token says.
    pub claims: Claims,
    /// Whether a key this instance holds made its signature (only then may it open a drain).
    pub verified: bool,
}

/// Issues the token for what `snapshot` serves at `now_ms`: its public flags, signed with the
/// snapshot's signing key at `now_ms` when it has one ([`Snapshot::signing_key`]).
pub fn issue(snapshot: &Snapshot, now_ms: i64) -> String {
    let claims = Claims {
        version: snapshot.version.clone(),
        profile_stamp_ms: snapshot.profile_stamp.map(|s| s.at.timestamp_millis()),
        issued_at_ms: now_ms,
        flags: snapshot
            .flags()
            .iter()
            .filter(|f| f.visibility == Visibility::Public)
            .map(|f| {
                let stamp_ms = (!f.forced)
                    .then(|| f.stamp.map(|s| s.at.timestamp_millis()))
                    .flatten();
                (
                    f.name.clone(),
                    TokenFlag {
                        value: f.value,
                        stamp_ms,
                    },
                )
            })
            .collect(),
    };
    encode(&claims, snapshot.signing_key(now_ms))
}

/// Encodes claims, signed with `key` when given (else the signature part is empty).
pub fn encode(claims: &Claims, key: Option<&JourneyKey>) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialise");
    let mut token = String::with_capacity(VERSION_PREFIX.len() + payload.len() * 4 / 3 + 48);
    token.push_str(VERSION_PREFIX);
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let signature = key.map(|key| {
        let mut mac = key.mac();
        mac.update(token.as_bytes());
        mac.finalize().into_bytes()
    });
    token.push('.');
    if let Some(signature) = signature {
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    }
    token
}

/// Reads a token, checking its signature against `keys`: [`read`] and [`verify`].
pub fn parse(token: &str, keys: &[JourneyKey], latest_issue_ms: i64) -> Option<Received> {
    let claims = read(token, latest_issue_ms)?;
    Some(Received {
        claims,
        verified: verify(token, keys),
    })
}

/// A token's parts: the signed text (`v1.<payload>`), the payload and the signature.
fn split(token: &str) -> Option<(&str, &str, &str)> {
    if token.len() > MAX_TOKEN_LEN || !token.is_ascii() {
        return None;
    }
    let rest = token.strip_prefix(VERSION_PREFIX)?;
    let (payload, signature) = rest.split_once('.')?;
    let signed = &token[..VERSION_PREFIX.len() + payload.len()];
    Some((signed, payload, signature))
}

/// What a token says, without checking its signature; `None` for anything that is not a
/// well-formed token of this version, or one issued later than `latest_issue_ms` (a token
/// from the future was not issued by an instance of this fleet). Never panics.
pub fn read(token: &str, latest_issue_ms: i64) -> Option<Claims> {
    let (_, payload, _) = split(token)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    (claims.issued_at_ms <= latest_issue_ms).then_some(claims)
}

/// Whether one of `keys` made the token's signature (constant-time comparison: hmac's verify).
/// An unsigned or malformed token is never verified.
pub fn verify(token: &str, keys: &[JourneyKey]) -> bool {
    let Some((signed, _, signature)) = split(token) else {
        return false;
    };
    !signature.is_empty()
        && URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .is_some_and(|signature| {
                keys.iter().any(|key| {
                    let mut mac = key.mac();
                    mac.update(signed.as_bytes());
                    mac.verify_slice(&signature).is_ok()
                })
            })
}

/// The tag of `data` for `purpose` under `key`: HMAC-SHA256 under a subkey derived for that
/// purpose (HMAC of `lockstep purpose:` and the purpose), so a tag made for one purpose never
/// verifies for another, nor as a journey token's signature. For values a service hands out and
/// must get back unchanged (e.g. listing cursors), signed with the same keys every instance of
/// the fleet reads from the stamped content.
pub fn tag(key: &JourneyKey, purpose: &str, data: &[u8]) -> [u8; 32] {
    let mut mac = purpose_mac(key, purpose);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Whether `tag` is the [`tag`] of `data` for `purpose` under one of `keys` (constant-time:
/// hmac's verify). Never panics, whatever the bytes.
pub fn verify_tag(keys: &[JourneyKey], purpose: &str, data: &[u8], tag: &[u8]) -> bool {
    keys.iter().any(|key| {
        let mut mac = purpose_mac(key, purpose);
        mac.update(data);
        mac.verify_slice(tag).is_ok()
    })
}

fn purpose_mac(key: &JourneyKey, purpose: &str) -> HmacSha256 {
    let mut derive = key.mac();
    derive.update(b"lockstep purpose:");
    derive.update(purpose.as_bytes());
    let subkey = derive.finalize().into_bytes();
    HmacSha256::new_from_slice(&subkey).expect("HMAC takes a key of any length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_purpose_tag_verifies_only_for_its_purpose_data_and_keys() {
        let (a, b) = (
            JourneyKey::from_bytes([1; 32]),
            JourneyKey::from_bytes([2; 32]),
        );
        let t = tag(&a, "cursor", b"page 2");
        assert!(verify_tag(&[b.clone(), a.clone()], "cursor", b"page 2", &t));
        assert!(!verify_tag(
            std::slice::from_ref(&b),
            "cursor",
            b"page 2",
            &t
        ));
        assert!(!verify_tag(
            std::slice::from_ref(&a),
            "cursor",
            b"page 3",
            &t
        ));
        assert!(!verify_tag(
            std::slice::from_ref(&a),
            "other",
            b"page 2",
            &t
        ));
        assert!(!verify_tag(
            std::slice::from_ref(&a),
            "cursor",
            b"page 2",
            &t[..31]
        ));
        assert!(!verify_tag(&[], "cursor", b"page 2", &t));
        // Not the journey-token MAC of the same bytes.
        let mut plain = a.mac();
        plain.update(b"page 2");
        assert_ne!(plain.finalize().into_bytes().as_slice(), t.as_slice());
    }

    fn claims() -> Claims {
        Claims {
            version: "T2026-11-21T10:00:00.000Z".into(),
            profile_stamp_ms: Some(1_763_719_200_000),
            issued_at_ms: 1_763_719_260_000,
            flags: BTreeMap::from([(
                "isFeatureXEnabled".to_owned(),
                TokenFlag {
                    value: true,
                    stamp_ms: Some(1_763_719_200_000),
                },
            )]),
        }
    }

    const NOW: i64 = 1_763_719_300_000;

    #[test]
    fn a_signed_token_round_trips_and_verifies_with_its_key_only() {
        let key = JourneyKey::from_bytes([7; KEY_LEN]);
        let other = JourneyKey::from_bytes([8; KEY_LEN]);
        let token = encode(&claims(), Some(&key));

        let ours = parse(&token, std::slice::from_ref(&key), NOW).unwrap();
        assert_eq!(ours.claims, claims());
        assert!(ours.verified);
        assert!(
            !parse(&token, std::slice::from_ref(&other), NOW)
                .unwrap()
                .verified
        );
        // A rotated-out key stays accepted while it is listed after the current one.
        assert!(parse(&token, &[other, key], NOW).unwrap().verified);
    }

    #[test]
    fn an_edited_payload_no_longer_verifies() {
        let key = JourneyKey::from_bytes([7; KEY_LEN]);
        let token = encode(&claims(), Some(&key));
        let signature = token.rsplit_once('.').unwrap().1;
        let mut forged = claims();
        forged.flags.get_mut("isFeatureXEnabled").unwrap().stamp_ms = Some(1);
        let unsigned = encode(&forged, None);
        let forged_token = format!("{unsigned}{signature}");

        let received = parse(&forged_token, &[key], NOW).unwrap();
        assert_eq!(received.claims, forged);
        assert!(!received.verified);
    }

    #[test]
    fn an_unsigned_token_is_read_but_never_verified() {
        let token = encode(&claims(), None);
        assert!(token.ends_with('.'));
        let received = parse(&token, &[JourneyKey::from_bytes([7; KEY_LEN])], NOW).unwrap();
        assert!(!received.verified);
    }

    #[test]
    fn malformed_future_and_oversized_tokens_are_no_token() {
        let key = JourneyKey::from_bytes([7; KEY_LEN]);
        for bad in [
            "", "v1.", "v1..", "v2.e30.", "v1.!!!.", "v1.e30.", "garbage", "v1.é.",
        ] {
            assert_eq!(parse(bad, std::slice::from_ref(&key), NOW), None, "{bad:?}");
        }
        let mut future = claims();
        future.issued_at_ms = NOW + 1;
        assert_eq!(parse(&encode(&future, Some(&key)), &[key], NOW), None);
        assert_eq!(parse(&"v1.".repeat(4000), &[], NOW), None);
    }

    #[test]
    fn a_key_prints_redacted_and_round_trips_as_text() {
        let key = JourneyKey::generate().unwrap();
        assert_eq!(format!("{key:?}"), "JourneyKey(<redacted>)");
        assert_eq!(JourneyKey::from_text(&key.to_text()).unwrap(), key);
        assert_eq!(JourneyKey::from_text("c2hvcnQ"), Err(BadKey));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(token in ".{0,200}", raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let key = JourneyKey::from_bytes([1; KEY_LEN]);
            let _ = parse(&token, std::slice::from_ref(&key), NOW);
            let wrapped = format!("v1.{}.{}", URL_SAFE_NO_PAD.encode(&raw), URL_SAFE_NO_PAD.encode(&raw));
            let _ = parse(&wrapped, &[key], NOW);
        }
    }
}
