//! Argon2id password hashing with OWASP's parameters (19 MiB, 2 passes, 1
//! lane), run on the blocking pool so it never stalls the async workers, and
//! bounded so a burst of sign-ups cannot exhaust memory.

use std::sync::Arc;

use anyhow::Context;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version};
use password_hash_reexport::{PasswordHasher as _, SaltString, rand_core::OsRng};
use secrecy::ExposeSecret;
use tokio::sync::Semaphore;

use crate::domain::{Error, user::Password};

use argon2::password_hash as password_hash_reexport;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    /// OWASP Password Storage Cheat Sheet: argon2id, m=19456 KiB, t=2, p=1.
    pub fn owasp(concurrency: usize) -> Self {
        let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
        PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string of `password` with a fresh salt.
    pub async fn hash(&self, password: Password) -> Result<String, Error> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let argon2 = self.argon2();
        let phc = tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2
                .hash_password(password.secret().expose_secret().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
        })
        .await
        .context("password hashing task")??;
        Ok(phc)
    }

    /// True when `password` matches the PHC string `phc`.
    pub async fn verify(&self, password: Password, phc: String) -> Result<bool, Error> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let argon2 = self.argon2();
        let matches = tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&phc)
                .map_err(|e| anyhow::anyhow!("stored password hash: {e}"))?;
            Ok::<_, anyhow::Error>(
                argon2
                    .verify_password(password.secret().expose_secret().as_bytes(), &parsed)
                    .is_ok(),
            )
        })
        .await
        .context("password verification task")??;
        Ok(matches)
    }
}
