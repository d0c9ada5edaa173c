//! The journey key: the secret that signs and verifies journey tokens ([`crate::journey`]) and
//! purpose tags, carried in the stamped metadata (`lockstepMetadata.journeyKeys`) and read by
//! the document, the snapshot and the stamping code. Its bytes are never shown.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A journey key's length in bytes (HMAC-SHA256 with a 256-bit key).
pub const KEY_LEN: usize = 32;

/// A key that signs and verifies journey tokens. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct JourneyKey([u8; KEY_LEN]);

impl std::fmt::Debug for JourneyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JourneyKey(<redacted>)")
    }
}

/// A journey key that is not 32 bytes of unpadded base64url.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a journey key must be {KEY_LEN} bytes of unpadded base64url")]
pub struct BadKey;

impl JourneyKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// Reads the form the metadata stores (unpadded base64url).
    pub fn from_text(text: &str) -> Result<Self, BadKey> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| BadKey)?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| BadKey)?;
        Ok(Self(bytes))
    }

    /// The form the metadata stores (unpadded base64url). Never log it.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub(crate) fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes a key of any length")
    }
}
