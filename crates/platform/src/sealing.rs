//! Sealing an invitation token for its trip to the mailer: the mail command
//! waits in the outbox row, crosses RabbitMQ, and sits in the dead-letter
//! queue for days when its email fails. Sealed with an AEAD key the service
//! and the mailer share (ChaCha20-Poly1305, ring's), no row, queue, log or
//! backup holds a usable token; only the mailer, rendering the email, opens
//! it. Each sealed token names its key, so keys rotate: the first key of
//! `WOWCHAT_MAIL_TOKEN_KEYS` seals, every listed key opens.

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{
    aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};

/// A token sealed under one key: what the mail command carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// The keys that seal and open tokens.
pub struct TokenKeys {
    /// In order: the first seals.
    keys: Vec<(String, LessSafeKey)>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("TokenKeys").field("key_ids", &ids).finish()
    }
}

impl TokenKeys {
    /// `id:key[,id:key…]`, each key 32 bytes in base64url (e.g.
    /// `openssl rand 32 | basenc --base64url`); the first seals.
    pub fn parse(setting: &str) -> anyhow::Result<TokenKeys> {
        let mut keys = Vec::new();
        for entry in setting.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, key) = entry.split_once(':').with_context(|| {
                "WOWCHAT_MAIL_TOKEN_KEYS: each key is id:base64url (32 bytes)".to_owned()
            })?;
            let bytes = URL_SAFE_NO_PAD
                .decode(key.trim().trim_end_matches('='))
                .ok()
                .filter(|bytes| bytes.len() == 32)
                .with_context(|| {
                    format!("WOWCHAT_MAIL_TOKEN_KEYS: key {id} is not 32 bytes of base64url")
                })?;
            if id.is_empty() || keys.iter().any(|(known, _)| known == id) {
                anyhow::bail!("WOWCHAT_MAIL_TOKEN_KEYS: key ids are distinct and not empty");
            }
            keys.push((id.to_owned(), key_of(&bytes)?));
        }
        if keys.is_empty() {
            anyhow::bail!("WOWCHAT_MAIL_TOKEN_KEYS: no key given");
        }
        Ok(TokenKeys { keys })
    }

    /// A setting with one fresh random key, for a process that runs the
    /// service and the mailer together (`standalone`).
    pub fn generate_setting() -> anyhow::Result<String> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("no randomness for a mail token key"))?;
        Ok(format!("local:{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Seals `token`, bound to `context` (the invitation id): a sealed token
    /// moved to another invitation's command does not open.
    pub fn seal(&self, token: &str, context: &[u8]) -> anyhow::Result<Sealed> {
        let (key_id, key) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("no randomness for a nonce"))?;
        let mut ciphertext = token.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context),
            &mut ciphertext,
        )
        .map_err(|_| anyhow::anyhow!("sealing a token"))?;
        Ok(Sealed {
            key_id: key_id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// The token, when one of the keys sealed it for `context`.
    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Option<String> {
        let (_, key) = self.keys.iter().find(|(id, _)| *id == sealed.key_id)?;
        let nonce = Nonce::try_assume_unique_for_key(&sealed.nonce).ok()?;
        let mut buffer = sealed.ciphertext.clone();
        let plain = key
            .open_in_place(nonce, Aad::from(context), &mut buffer)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

fn key_of(bytes: &[u8]) -> anyhow::Result<LessSafeKey> {
    let key = UnboundKey::new(&CHACHA20_POLY1305, bytes)
        .map_err(|_| anyhow::anyhow!("a mail token key must be 32 bytes"))?;
    Ok(LessSafeKey::new(key))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_sealed_token_opens_only_with_its_key_and_its_context() {
        let keys = TokenKeys::parse(&TokenKeys::generate_setting().unwrap()).unwrap();
        let sealed = keys.seal("the token", b"invitation 1").unwrap();
        assert!(!sealed.ciphertext.windows(9).any(|w| w == b"the token"));
        assert_eq!(
            keys.open(&sealed, b"invitation 1").as_deref(),
            Some("the token")
        );
        assert_eq!(keys.open(&sealed, b"invitation 2"), None);
        let other = TokenKeys::parse(&TokenKeys::generate_setting().unwrap()).unwrap();
        assert_eq!(other.open(&sealed, b"invitation 1"), None);
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert_eq!(keys.open(&flipped, b"invitation 1"), None);
    }

    #[test]
    fn keys_rotate_the_first_seals_and_every_one_opens() {
        let old = TokenKeys::generate_setting()
            .unwrap()
            .replacen("local", "old", 1);
        let new = TokenKeys::generate_setting()
            .unwrap()
            .replacen("local", "new", 1);
        let before = TokenKeys::parse(&old).unwrap();
        let sealed_before = before.seal("t", b"i").unwrap();
        let after = TokenKeys::parse(&format!("{new},{old}")).unwrap();
        assert_eq!(after.open(&sealed_before, b"i").as_deref(), Some("t"));
        assert_eq!(after.seal("t", b"i").unwrap().key_id, "new");
        for bad in ["", "nokey", "a:short", "a:AAAA,a:AAAA"] {
            assert!(TokenKeys::parse(bad).is_err(), "{bad}");
        }
    }
}
