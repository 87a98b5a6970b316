//! Argon2id password hashing with OWASP's parameters (19 MiB, 2 passes, 1
//! lane), run on the blocking pool so it never stalls the async workers, and
//! bounded so a burst of sign-ups cannot exhaust memory. Sign-in verifies an
//! unknown email's password against a dummy hash with the same parameters,
//! so a wrong email costs the same work as a wrong password.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

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
    /// The PHC string of a random password nobody knows, hashed with
    /// `params` once at start: what an unknown email is verified against.
    dummy: Arc<str>,
    /// Password verifications run so far (stored or dummy hash alike).
    verifications: Arc<AtomicU64>,
}

impl PasswordHasher {
    /// OWASP Password Storage Cheat Sheet: argon2id, m=19456 KiB, t=2, p=1.
    /// Computes the dummy hash (one hashing, a few tens of milliseconds).
    pub fn owasp(concurrency: usize) -> anyhow::Result<Self> {
        let params = Params::new(19 * 1024, 2, 1, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let unknowable = SaltString::generate(&mut OsRng);
        let dummy = argon2
            .hash_password(
                unknowable.as_str().as_bytes(),
                &SaltString::generate(&mut OsRng),
            )
            .map_err(|e| anyhow::anyhow!("hashing the dummy password: {e}"))?
            .to_string();
        Ok(PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: dummy.into(),
            verifications: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How many passwords were verified so far, against a stored or the dummy
    /// hash: tests compare the work of different sign-in failures with it.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
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
        self.verifications.fetch_add(1, Ordering::Relaxed);
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

    /// Verifies `password` against `phc`, or, when there is none (no such
    /// user), against the dummy hash with the same parameters and answers
    /// false: both cost one argon2id verification.
    pub async fn verify_or_dummy(
        &self,
        password: Password,
        phc: Option<String>,
    ) -> Result<bool, Error> {
        match phc {
            Some(phc) => self.verify(password, phc).await,
            None => {
                self.verify(password, self.dummy.to_string()).await?;
                Ok(false)
            }
        }
    }
}
