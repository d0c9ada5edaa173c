//! Journey tokens (design rules 8 and 9): what `/config` told a client, carried back on its
//! feature calls in the `Lockstep-Journey` header.
//!
//! A token names the configuration the issuing instance served: its version, the profile stamp,
//! the moment of issue and, for each public flag, its value and its stamp T (Unix milliseconds).
//! It is opaque to clients and versioned, so its format can change:
//!
//! ```text
//! v2.<base64url(payload)>.<base64url(HMAC-SHA256(key, "v2." + payload))>
//! ```
//!
//! The payload is compact binary ([`codec`]: flags named by a digest of their name, stamps as
//! varints), so a token for 64 public flags with 64-character names takes about 1.2 KB, far
//! below [`MAX_TOKEN_LEN`]. Tokens of the previous format (`v1.`, JSON) are still read. A token
//! that cannot be issued (over the limit) is an [`IssueError`]: the caller says so and hands out
//! none, never one that every reader would drop.
//!
//! The signature is made with the *journey key* carried in the stamped metadata
//! (`lockstepMetadata.journeyKeys`, written and kept by the stamping code like a stamp, rotated
//! on request; never exposed by `/config`). Content without a key issues unsigned tokens
//! (`v2.<payload>.`), which can still ask for a catch-up but never open a drain.
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

mod codec;

use crate::catalog::Visibility;
pub use crate::journey_key::{BadKey, JourneyKey, KEY_LEN};
use crate::snapshot::Snapshot;
use crate::targeted::{anonymous, subject, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The request header that carries the token.
pub const HEADER: &str = "Lockstep-Journey";

/// The prefix of the token format this release issues.
pub const VERSION_PREFIX: &str = "v2.";

/// The prefix of the previous format, still read.
const V1_PREFIX: &str = "v1.";

/// The longest token accepted (bytes); a longer header is "no token", and a longer token is
/// never issued ([`IssueError::TooLong`]). A token for 64 public flags with 64-character names
/// takes about 1.2 KB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The resolution of a token's moment of issue as [`issue_reused`] hands tokens out (ms): every
/// read of one snapshot within one second gets the same token, signed once, saying it was issued
/// at the start of that second. Coarser only ever makes a token look older (a drain admits it no
/// later than the exact moment would), and a second is well below ε.
pub const ISSUE_RESOLUTION_MS: i64 = 1000;

type HmacSha256 = Hmac<Sha256>;

/// One public flag as the issuing instance served it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenFlag {
    /// The value served.
    pub value: bool,
    /// Its stamp T, Unix milliseconds; none for an unstamped or forced flag.
    pub stamp_ms: Option<i64>,
}

/// A token's flags, looked up by name. A token carries a digest of each name, not the name
/// ([`codec`]), so the names cannot be listed, only asked for.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TokenFlags(Vec<(u64, TokenFlag)>);

impl TokenFlags {
    /// The claim for the flag `name`, if the token carries one.
    pub fn get(&self, name: &str) -> Option<&TokenFlag> {
        let reference = codec::reference(name);
        self.0
            .binary_search_by_key(&reference, |(r, _)| *r)
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// How many flags the token carries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it carries none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// From flags already referenced; `None` when two share a reference.
    fn from_references(mut flags: Vec<(u64, TokenFlag)>) -> Option<Self> {
        flags.sort_unstable_by_key(|(r, _)| *r);
        let unique = flags.windows(2).all(|w| w[0].0 != w[1].0);
        unique.then_some(Self(flags))
    }
}

impl std::fmt::Debug for TokenFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(r, flag)| (format!("{r:016x}"), flag)))
            .finish()
    }
}

/// By name; for one name given twice, the last claim counts.
impl FromIterator<(String, TokenFlag)> for TokenFlags {
    fn from_iter<I: IntoIterator<Item = (String, TokenFlag)>>(iter: I) -> Self {
        let by_name: BTreeMap<String, TokenFlag> = iter.into_iter().collect();
        let mut flags: Vec<(u64, TokenFlag)> = by_name
            .into_iter()
            .map(|(name, flag)| (codec::reference(&name), flag))
            .collect();
        flags.sort_by_key(|(r, _)| *r);
        flags.dedup_by_key(|(r, _)| *r);
        Self(flags)
    }
}

impl<const N: usize> From<[(String, TokenFlag); N]> for TokenFlags {
    fn from(flags: [(String, TokenFlag); N]) -> Self {
        flags.into_iter().collect()
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The configuration version served.
    pub version: String,
    /// The profile stamp T, Unix milliseconds.
    pub profile_stamp_ms: Option<i64>,
    /// When the token was issued (the issuing instance's clock), Unix milliseconds.
    pub issued_at_ms: i64,
    /// For a token bound to one caller ([`issue_for`]), their reference (the first 8 bytes of
    /// SHA-256 of `lockstep subject:` and their targeting key, [`subject`]): its
    /// claims for flags defined by rules are theirs, and only a request verified as them reads
    /// it. None: a token for anyone, which claims every flag defined by rules off.
    pub subject: Option<u64>,
    /// Every public flag.
    pub flags: TokenFlags,
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

/// Why no token could be issued for a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// The token would exceed [`MAX_TOKEN_LEN`], so every reader would drop it.
    #[error("the journey token would take {len} bytes, over the {MAX_TOKEN_LEN}-byte limit")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// Two public flags' names share a digest, so a reader could not tell their claims apart
    /// (64 bits: never seen in practice; rename one flag).
    #[error("two public flags share a journey-token reference")]
    ReferenceCollision,
}

/// Issues the token for what `snapshot` serves at `now_ms`: its public flags, signed with the
/// snapshot's signing key at `now_ms` when it has one ([`Snapshot::signing_key`]). Not bound to
/// a caller: a flag defined by rules is claimed off.
pub fn issue(snapshot: &Snapshot, now_ms: i64) -> Result<String, IssueError> {
    issue_for(snapshot, anonymous(), now_ms)
}

/// Issues the token for what `snapshot` serves the caller `context` at `now_ms`. For a caller
/// with a targeting key ([`crate::targeted::subject`]) the token is bound to them
/// ([`Claims::subject`]) and claims, for each flag defined by rules, their value and their step
/// ([`crate::resolved::ResolvedFlag::claim_for`]): an instance behind their step catches up (rule 8) and a
/// narrowing that switched them off with a drain honours it (rule 9), per user (rule 10). A
/// token without a caller claims such flags off (fail closed: no catch-up, no drain).
pub fn issue_for(
    snapshot: &Snapshot,
    context: &Context,
    now_ms: i64,
) -> Result<String, IssueError> {
    let subject = subject(context);
    let flags = snapshot
        .flags()
        .iter()
        .filter(|f| f.visibility == Visibility::Public)
        .map(|f| {
            let (value, stamp_ms) = match (f.rules(), subject) {
                (Some(_), Some(_)) => f.claim_for(context, now_ms),
                // A flag defined by rules has no one value to carry for anyone: off.
                (Some(_), None) => (false, f.stamp_millis()),
                (None, _) => (f.value, f.stamp_millis()),
            };
            (codec::reference(&f.name), TokenFlag { value, stamp_ms })
        })
        .collect();
    let claims = Claims {
        version: snapshot.version.clone(),
        profile_stamp_ms: snapshot.profile_stamp.map(|s| s.at.timestamp_millis()),
        issued_at_ms: now_ms,
        subject: subject.map(codec::subject_reference),
        flags: TokenFlags::from_references(flags).ok_or(IssueError::ReferenceCollision)?,
    };
    let token = encode(&claims, snapshot.signing_key(now_ms));
    if token.len() > MAX_TOKEN_LEN {
        return Err(IssueError::TooLong { len: token.len() });
    }
    Ok(token)
}

/// Whether a token's claims may be read for the caller `context`: a token not bound to a caller
/// may, one bound to a caller only for that caller.
pub fn readable_by(claims: &Claims, context: &Context) -> bool {
    match claims.subject {
        None => true,
        Some(bound) => subject(context).is_some_and(|key| codec::subject_reference(key) == bound),
    }
}

/// The token `/config` and OFREP hand out at `now_ms` to the caller `context`: [`issue_for`]
/// the start of the current second ([`ISSUE_RESOLUTION_MS`]). A token not bound to a caller is
/// kept in the snapshot, so every anonymous read of the snapshot in that second gets the same
/// token without signing again (it depends only on the snapshot and its moment of issue); a
/// caller's own token is signed per read. `None` when none can be issued: logged
/// (`path = "journey_token_not_issued"`, once per second and snapshot for the anonymous one),
/// and the answer carries no token.
pub fn issue_reused(snapshot: &Snapshot, context: &Context, now_ms: i64) -> Option<Arc<str>> {
    let second = now_ms.div_euclid(ISSUE_RESOLUTION_MS) * ISSUE_RESOLUTION_MS;
    let make = || {
        issue_for(snapshot, context, second)
            .inspect_err(|error| {
                tracing::warn!(
                    version = %snapshot.version,
                    public_flags = snapshot
                        .flags()
                        .iter()
                        .filter(|f| f.visibility == Visibility::Public)
                        .count(),
                    error = %error,
                    path = "journey_token_not_issued",
                    "no journey token: catch-up and drains need one"
                );
            })
            .ok()
            .map(Arc::from)
    };
    if subject(context).is_some() {
        return make();
    }
    snapshot.issued_token().get_or_make(second, make)
}

/// Encodes claims, signed with `key` when given (else the signature part is empty).
pub fn encode(claims: &Claims, key: Option<&JourneyKey>) -> String {
    let payload = codec::encode_v2(claims);
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

/// A token's parts: the signed text (`v2.<payload>`), the payload, the signature and whether it
/// is of the previous format (`v1.`).
fn split(token: &str) -> Option<(&str, &str, &str, bool)> {
    if token.len() > MAX_TOKEN_LEN || !token.is_ascii() {
        return None;
    }
    let (rest, v1) = match token.strip_prefix(VERSION_PREFIX) {
        Some(rest) => (rest, false),
        None => (token.strip_prefix(V1_PREFIX)?, true),
    };
    let (payload, signature) = rest.split_once('.')?;
    let signed = &token[..token.len() - rest.len() + payload.len()];
    Some((signed, payload, signature, v1))
}

/// What a token says, without checking its signature; `None` for anything that is not a
/// well-formed token of a known format, or one issued later than `latest_issue_ms` (a token
/// from the future was not issued by an instance of this fleet). Never panics.
pub fn read(token: &str, latest_issue_ms: i64) -> Option<Claims> {
    let (_, payload, _, v1) = split(token)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims = if v1 {
        codec::decode_v1(&bytes)?
    } else {
        codec::decode_v2(&bytes)?
    };
    (claims.issued_at_ms <= latest_issue_ms).then_some(claims)
}

/// Whether one of `keys` made the token's signature (constant-time comparison: hmac's verify).
/// An unsigned or malformed token is never verified.
pub fn verify(token: &str, keys: &[JourneyKey]) -> bool {
    let Some((signed, _, signature, _)) = split(token) else {
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
            subject: None,
            flags: [(
                "isFeatureXEnabled".to_owned(),
                TokenFlag {
                    value: true,
                    stamp_ms: Some(1_763_719_200_000),
                },
            )]
            .into(),
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
        forged.flags = [(
            "isFeatureXEnabled".to_owned(),
            TokenFlag {
                value: true,
                stamp_ms: Some(1),
            },
        )]
        .into();
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
            for prefix in ["v1.", "v2."] {
                let wrapped = format!("{prefix}{}.{}", URL_SAFE_NO_PAD.encode(&raw), URL_SAFE_NO_PAD.encode(&raw));
                let _ = parse(&wrapped, std::slice::from_ref(&key), NOW);
            }
        }
    }

    #[test]
    fn a_token_of_the_previous_format_is_still_read_and_verified() {
        let key = JourneyKey::from_bytes([7; KEY_LEN]);
        let payload = br#"{"c":"T2026-11-21T10:00:00.000Z","p":1763719200000,"i":1763719260000,"f":{"isFeatureXEnabled":{"v":true,"t":1763719200000}}}"#;
        let mut token = format!("v1.{}", URL_SAFE_NO_PAD.encode(payload));
        let mut mac = key.mac();
        mac.update(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));

        let received = parse(&token, &[key], NOW).unwrap();
        assert_eq!(received.claims, claims());
        assert!(received.verified);
    }
}
