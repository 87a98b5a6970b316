//! Bearer JWTs: verified against configured public keys (EdDSA or RS256),
//! with issuer, audience and expiry checked; minted with an Ed25519 private
//! key for development, tests and sign-in. With no keys configured a
//! development key pair is generated in a local directory.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use ed25519_dalek::{
    SigningKey,
    pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding},
};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    errors::ErrorKind,
    jwk::{Jwk, PublicKeyUse, ThumbprintHash},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Error, Reason};

/// The claims this service issues and accepts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The workspace id.
    pub workspace_id: String,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

/// Where the keys come from.
#[derive(Debug, Clone)]
pub struct KeySettings {
    pub issuer: String,
    pub audience: String,
    pub public_keys: Vec<PathBuf>,
    pub private_key: Option<PathBuf>,
    pub dev_keys_dir: PathBuf,
    /// The longest a token may live (`exp - iat`): longer ones are refused
    /// at verification and never minted.
    pub max_lifetime: Duration,
}

/// Seconds a token is still accepted past its `exp` (clock skew).
const LEEWAY_SECS: u64 = 30;

/// What a verified bearer token says.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedToken {
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    /// Until when it is accepted: its `exp` plus the leeway, in seconds
    /// since the Unix epoch.
    pub accepted_until: u64,
    /// `iat`: a session ended after it refuses the token.
    pub issued_at: u64,
}

pub struct JwtKeys {
    issuer: String,
    audience: String,
    max_lifetime: u64,
    /// The public keys as JWKs, each with its thumbprint as `kid`.
    jwks: Vec<Jwk>,
    /// The `kid` of the signing key, in the header of every token minted.
    signer_kid: Option<String>,
    verifiers: Vec<(Algorithm, DecodingKey)>,
    signer: Option<EncodingKey>,
}

impl JwtKeys {
    pub fn load(settings: &KeySettings) -> anyhow::Result<Self> {
        let private_key = match (&settings.private_key, settings.public_keys.is_empty()) {
            (Some(path), _) => Some(read(path)?),
            (None, true) => Some(dev_key(&settings.dev_keys_dir)?),
            (None, false) => None,
        };
        let signing = private_key
            .as_deref()
            .map(|pem| {
                SigningKey::from_pkcs8_pem(pem).context("private key must be an Ed25519 PKCS#8 PEM")
            })
            .transpose()?;

        let mut verifiers = Vec::new();
        for path in &settings.public_keys {
            verifiers.push(
                public_key(&read(path)?)
                    .with_context(|| format!("public key {}", path.display()))?,
            );
        }
        if verifiers.is_empty() {
            // Only a private key: verify what it signs.
            if let Some(key) = &signing {
                let pem = key.verifying_key().to_public_key_pem(LineEnding::LF)?;
                verifiers.push((Algorithm::EdDSA, DecodingKey::from_ed_pem(pem.as_bytes())?));
            }
        }
        let signer = match (&signing, &private_key) {
            (Some(_), Some(pem)) => Some(EncodingKey::from_ed_pem(pem.as_bytes())?),
            _ => None,
        };
        let jwks = verifiers
            .iter()
            .map(|(algorithm, key)| jwk(key, *algorithm))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let signer_kid = signing
            .as_ref()
            .map(|key| {
                let pem = key.verifying_key().to_public_key_pem(LineEnding::LF)?;
                let public = DecodingKey::from_ed_pem(pem.as_bytes())?;
                anyhow::Ok(
                    jwk(&public, Algorithm::EdDSA)?
                        .common
                        .key_id
                        .unwrap_or_default(),
                )
            })
            .transpose()?;
        Ok(JwtKeys {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            max_lifetime: settings.max_lifetime.as_secs(),
            jwks,
            signer_kid,
            verifiers,
            signer,
        })
    }

    /// Checks signature, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, Error> {
        let invalid =
            || Error::unauthenticated(Reason::TokenInvalid, "the bearer token is not valid");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        let mut expired = false;
        for (algorithm, key) in self.verifiers.iter().filter(|(a, _)| *a == header.alg) {
            let mut validation = Validation::new(*algorithm);
            validation.set_issuer(&[&self.issuer]);
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
            validation.leeway = LEEWAY_SECS;
            // `nbf` when present; `iat` below.
            validation.validate_nbf = true;
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => {
                    // Issued in the future, or meant to live longer than any
                    // token may: refused, whatever its signature.
                    let issued = data.claims.iat;
                    let now = jsonwebtoken::get_current_timestamp();
                    let lifetime = data.claims.exp.checked_sub(issued).ok_or_else(invalid)?;
                    if issued > now.saturating_add(LEEWAY_SECS) || lifetime > self.max_lifetime {
                        return Err(invalid());
                    }
                    let user = Uuid::parse_str(&data.claims.sub).map_err(|_| invalid())?;
                    let workspace =
                        Uuid::parse_str(&data.claims.workspace_id).map_err(|_| invalid())?;
                    return Ok(VerifiedToken {
                        user_id: user,
                        workspace_id: workspace,
                        accepted_until: data.claims.exp.saturating_add(LEEWAY_SECS),
                        issued_at: issued,
                    });
                }
                Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => expired = true,
                Err(_) => {}
            }
        }
        if expired {
            Err(Error::unauthenticated(
                Reason::TokenExpired,
                "the bearer token has expired",
            ))
        } else {
            Err(invalid())
        }
    }

    /// Signs a token for `user` of `workspace`, valid for `ttl`.
    pub fn mint(&self, user: Uuid, workspace: Uuid, ttl: Duration) -> anyhow::Result<String> {
        self.mint_expiring(user, workspace, ttl)
            .map(|(token, _)| token)
    }

    /// Like `mint`, with the token's `exp` (seconds since the Unix epoch).
    pub fn mint_expiring(
        &self,
        user: Uuid,
        workspace: Uuid,
        ttl: Duration,
    ) -> anyhow::Result<(String, u64)> {
        if ttl.as_secs() > self.max_lifetime {
            bail!(
                "a token may live {} s at most (WOWCHAT_JWT_MAX_LIFETIME_SECS); {} s asked",
                self.max_lifetime,
                ttl.as_secs()
            );
        }
        let now = jsonwebtoken::get_current_timestamp();
        let exp = now + ttl.as_secs();
        let token = self.sign(&Claims {
            sub: user.to_string(),
            workspace_id: workspace.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp,
        })?;
        Ok((token, exp))
    }

    /// Signs `claims` as they are (tests use it to make bad tokens).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let Some(signer) = &self.signer else {
            bail!("no private key configured (WOWCHAT_JWT_PRIVATE_KEY)");
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = self.signer_kid.clone();
        Ok(jsonwebtoken::encode(&header, claims, signer)?)
    }
}

impl JwtKeys {
    /// The public keys tokens are verified with (a JWKS's `keys`).
    pub fn jwks(&self) -> &[Jwk] {
        &self.jwks
    }
}

/// A public key as a JWK, its RFC 7638 thumbprint as `kid`.
fn jwk(key: &DecodingKey, algorithm: Algorithm) -> anyhow::Result<Jwk> {
    let mut jwk = Jwk::from_decoding_key(key, Some(algorithm))?;
    jwk.common.key_id = Some(jwk.thumbprint(ThumbprintHash::SHA256)?);
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(jwk)
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading key {}", path.display()))
}

fn public_key(pem: &str) -> anyhow::Result<(Algorithm, DecodingKey)> {
    if let Ok(key) = DecodingKey::from_ed_pem(pem.as_bytes()) {
        return Ok((Algorithm::EdDSA, key));
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
        return Ok((Algorithm::RS256, key));
    }
    bail!("not an Ed25519 or RSA public key PEM")
}

/// The development private key in `dir`, generated on first use.
fn dev_key(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("jwt-private.pem");
    if path.exists() {
        refuse_if_exposed(&path)?;
        return read(&path);
    }
    create_private_dir(dir)?;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = key.to_pkcs8_pem(LineEnding::LF)?;
    write_private(&path, pem.as_bytes())?;
    std::fs::write(
        dir.join("jwt-public.pem"),
        key.verifying_key().to_public_key_pem(LineEnding::LF)?,
    )?;
    tracing::warn!(
        path = %path.display(),
        "development mode: no JWT keys configured, generated a signing key pair; \
         set WOWCHAT_JWT_PUBLIC_KEYS in production"
    );
    Ok(pem.to_string())
}

/// Refuses a private key other users can read: whoever can read it can mint
/// tokens for any user (as ssh refuses an unprotected private key).
fn refuse_if_exposed(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading the permissions of {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "the development private key {} is accessible to other users (mode {:03o}); \
                 run `chmod 600 {}` or delete it to generate a new pair",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    Ok(())
}

/// Creates the key directory readable by its owner only (existing ones are
/// left as they are; the key file's own mode is what is checked).
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}
