//! The secrets the service hands out once and keeps only as a SHA-256:
//! invitation tokens, invite link secrets, directory secrets. Each is a
//! prefix (maybe empty) and [`Secret::BYTES`] random bytes in base64url;
//! its `Debug` never shows it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// `bytes` random bytes, base64url without padding.
pub fn random_base64url(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A secret as handed out: the prefix and the encoded random bytes.
pub struct Secret(SecretString);

impl Secret {
    const BYTES: usize = 32;

    pub fn generate(prefix: &str) -> Self {
        Secret(SecretString::from(format!(
            "{prefix}{}",
            random_base64url(Self::BYTES)
        )))
    }

    /// `input` when it is shaped like a secret with that prefix; whether it
    /// works is for the store to say.
    pub fn parse(input: &str, prefix: &str) -> Option<Self> {
        let decoded = URL_SAFE_NO_PAD.decode(input.strip_prefix(prefix)?).ok()?;
        (decoded.len() == Self::BYTES).then(|| Secret(SecretString::from(input.to_owned())))
    }

    /// The SHA-256 of the secret, the only form the database holds.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(self.0.expose_secret().as_bytes()).into()
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}
