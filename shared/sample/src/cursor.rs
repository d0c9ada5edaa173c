//! Listing cursors a client cannot forge: the store's cursor (which keys to continue after,
//! already bound to the user and journey it lists) followed by a tag over it, the user and the
//! journey, `<store cursor>.<base64url tag>`.
//!
//! The tag is `lockstep::journey::tag` for [`PURPOSE`] under the fleet's journey keys (the
//! stamped content's `lockstepMetadata.journeyKeys`, the same on every instance, rotated with
//! `--rotate-journey-key`; the previous key still verifies). On unsigned content (no keys: not
//! stamped, or defaults at a cold start) the instance signs with a key of its own, made at start:
//! such a cursor continues on this instance only, and elsewhere answers 400 like any cursor that
//! is not ours. A cursor edited in any byte, or made for another user or journey, answers 400
//! before the store is asked.

use crate::submissions::{Ident, UserId};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lockstep::journey::{self, JourneyKey};

/// The purpose the tag is made for (a tag for anything else never verifies as a cursor's).
pub const PURPOSE: &str = "lockstep-sample/listing-cursor/v1";

/// The longest cursor accepted (bytes): the longest store cursor
/// ([`crate::dynamo::MAX_STORE_CURSOR_LEN`], 2560: a 255-byte subject makes it long), a dot and
/// a 43-character tag, with room to spare.
pub const MAX_CURSOR_LEN: usize = 4096;

/// Signs and checks cursors.
#[derive(Clone)]
pub struct CursorSeal {
    /// This instance's own key, for unsigned content.
    own: JourneyKey,
}

impl CursorSeal {
    /// A seal with a fresh key of this instance's own (for unsigned content).
    pub fn new() -> Result<Self, getrandom::Error> {
        Ok(Self {
            own: JourneyKey::generate()?,
        })
    }

    /// The cursor handed to the client for the store's `inner` cursor of `user`'s listing (of
    /// `journey`, when the listing is a journey's), signed with the fleet's signing key now
    /// (`Snapshot::signing_key`: a key just rotated in only verifies until every instance holds
    /// it), or this instance's own key when the content has none.
    pub fn seal(
        &self,
        fleet_signing_key: Option<&JourneyKey>,
        user: &UserId,
        journey: Option<&Ident>,
        inner: &str,
    ) -> String {
        let key = fleet_signing_key.unwrap_or(&self.own);
        let tag = journey::tag(key, PURPOSE, &signed_bytes(user, journey, inner));
        format!("{inner}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The store's cursor inside `cursor`, when one of `fleet_keys` (or this instance's own key)
    /// made it for this user and journey; `None` for anything else. Never panics.
    pub fn open<'c>(
        &self,
        fleet_keys: &[JourneyKey],
        user: &UserId,
        journey: Option<&Ident>,
        cursor: &'c str,
    ) -> Option<&'c str> {
        if cursor.len() > MAX_CURSOR_LEN {
            return None;
        }
        let (inner, tag) = cursor.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let data = signed_bytes(user, journey, inner);
        let ours = journey::verify_tag(fleet_keys, PURPOSE, &data, &tag)
            || journey::verify_tag(std::slice::from_ref(&self.own), PURPOSE, &data, &tag);
        ours.then_some(inner)
    }
}

/// What the tag covers: user, journey (empty for a user's whole listing) and the store's cursor,
/// separated by U+001F, which neither a [`UserId`] nor an [`Ident`] holds (both refuse control
/// characters), nor the store's hex cursor.
fn signed_bytes(user: &UserId, journey: Option<&Ident>, inner: &str) -> Vec<u8> {
    let journey = journey.map_or("", Ident::as_str);
    [user.as_str(), journey, inner].join("\u{1f}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(s: &str) -> Ident {
        Ident::parse("id", s).unwrap()
    }

    fn user(s: &str) -> UserId {
        UserId::parse("sub", s).unwrap()
    }

    #[test]
    fn a_cursor_opens_only_for_its_user_and_journey_and_only_unchanged() {
        let seal = CursorSeal::new().unwrap();
        let fleet = [JourneyKey::from_bytes([7; 32])];
        let (alice, bob, j1, j2) = (user("alice"), user("bob"), id("j1"), id("j2"));
        let cursor = seal.seal(fleet.first(), &alice, Some(&j1), "00ff");
        assert_eq!(seal.open(&fleet, &alice, Some(&j1), &cursor), Some("00ff"));
        assert_eq!(seal.open(&fleet, &bob, Some(&j1), &cursor), None);
        assert_eq!(seal.open(&fleet, &alice, Some(&j2), &cursor), None);
        assert_eq!(seal.open(&fleet, &alice, None, &cursor), None);
        // Another instance of the fleet (its own key differs, the fleet key is the same) opens it.
        let other_instance = CursorSeal::new().unwrap();
        assert_eq!(
            other_instance.open(&fleet, &alice, Some(&j1), &cursor),
            Some("00ff")
        );
        // The inner cursor edited, the tag edited, the tag dropped.
        let edited = cursor.replacen("00ff", "00fe", 1);
        assert_eq!(seal.open(&fleet, &alice, Some(&j1), &edited), None);
        let mut flipped = cursor.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(seal.open(&fleet, &alice, Some(&j1), &flipped), None);
        assert_eq!(seal.open(&fleet, &alice, Some(&j1), "00ff"), None);
        // After a rotation the previous key (kept second) still opens it.
        let rotated = [JourneyKey::from_bytes([8; 32]), fleet[0].clone()];
        assert_eq!(
            seal.open(&rotated, &alice, Some(&j1), &cursor),
            Some("00ff")
        );
    }

    #[test]
    fn on_unsigned_content_a_cursor_continues_on_its_instance_only() {
        let (seal, other) = (CursorSeal::new().unwrap(), CursorSeal::new().unwrap());
        let alice = user("alice");
        let cursor = seal.seal(None, &alice, None, "abcd");
        assert_eq!(seal.open(&[], &alice, None, &cursor), Some("abcd"));
        assert_eq!(other.open(&[], &alice, None, &cursor), None);
    }

    #[test]
    fn the_longest_cursor_of_any_subject_opens_for_that_subject_only() {
        let seal = CursorSeal::new().unwrap();
        let fleet = [JourneyKey::from_bytes([7; 32])];
        let inner = "ab".repeat(crate::dynamo::MAX_STORE_CURSOR_LEN / 2);
        let (auth0, mail) = (user("auth0|abc"), user("alice@example.com"));
        let cursor = seal.seal(fleet.first(), &auth0, None, &inner);
        assert!(cursor.len() <= MAX_CURSOR_LEN);
        assert_eq!(
            seal.open(&fleet, &auth0, None, &cursor),
            Some(inner.as_str())
        );
        assert_eq!(seal.open(&fleet, &mail, None, &cursor), None);
        assert_eq!(seal.open(&fleet, &user("auth0|ab"), None, &cursor), None);
    }

    proptest! {
        #[test]
        fn any_string_is_refused_without_panicking(cursor in "\\PC{0,300}", raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let seal = CursorSeal::new().unwrap();
            let fleet = [JourneyKey::from_bytes([7; 32])];
            prop_assert_eq!(seal.open(&fleet, &user("alice"), None, &cursor), None);
            let lossy = String::from_utf8_lossy(&raw);
            prop_assert_eq!(seal.open(&fleet, &user("alice"), None, &lossy), None);
        }
    }
}
