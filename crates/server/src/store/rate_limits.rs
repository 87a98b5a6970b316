//! The rate limits every replica shares (`rate_limits`, migrations V19 and V24): one
//! row per limit and key with its theoretical arrival time, taken by the
//! database function `take_rate_limits` (the GCRA rule, one atomic upsert a
//! limit) in one round trip whatever the number of limits.

use std::time::Duration;

use super::{GenericClient, execute, query_opt, query_value};
use crate::domain::Error;

/// One unit of one limit for one key (a digest: never a raw email or
/// address).
#[derive(Debug, Clone, PartialEq)]
pub struct Take {
    pub limit: &'static str,
    pub key: [u8; 32],
    /// Seconds until a unit comes back.
    pub emission: f64,
    /// Seconds of units that may be taken ahead: the burst.
    pub tolerance: f64,
}

/// The key the service makes limit keys with, the same for every replica.
pub async fn secret(client: &impl GenericClient) -> Result<Vec<u8>, Error> {
    query_value(client, "SELECT secret FROM rate_limit_secret", &[]).await
}

/// Takes one unit of each in turn, stopping at the first that has none
/// (those before it keep theirs); `Err(wait)` says when it has one again.
pub async fn take(
    client: &impl GenericClient,
    takes: &[Take],
) -> Result<Result<(), Duration>, Error> {
    let names: Vec<&str> = takes.iter().map(|t| t.limit).collect();
    let keys: Vec<&[u8]> = takes.iter().map(|t| t.key.as_slice()).collect();
    let emission: Vec<f64> = takes.iter().map(|t| t.emission).collect();
    let tolerance: Vec<f64> = takes.iter().map(|t| t.tolerance).collect();
    let wait: Option<f64> = query_value(
        client,
        "SELECT take_rate_limits($1, $2, $3, $4)",
        &[&names, &keys, &emission, &tolerance],
    )
    .await?;
    Ok(match wait {
        None => Ok(()),
        // A unit given back meanwhile can make it zero: still wait a moment.
        Some(wait) => Err(Duration::try_from_secs_f64(wait)
            .unwrap_or_default()
            .max(Duration::from_millis(1))),
    })
}

/// Whether `take`'s bucket has no unit left now (read, nothing taken).
pub async fn exhausted(client: &impl GenericClient, take: &Take) -> Result<bool, Error> {
    Ok(query_opt(
        client,
        "SELECT tat > clock_timestamp() + make_interval(secs => $3) FROM rate_limits \
         WHERE name = $1 AND key = $2",
        &[&take.limit, &take.key.as_slice(), &take.tolerance],
        |row| Ok(row.try_get::<_, bool>(0)?),
    )
    .await?
    .unwrap_or(false))
}

/// Gives back the unit `take` took.
pub async fn give_back(client: &impl GenericClient, take: &Take) -> Result<(), Error> {
    execute(
        client,
        "UPDATE rate_limits SET tat = tat - make_interval(secs => $3) \
         WHERE name = $1 AND key = $2",
        &[&take.limit, &take.key.as_slice(), &take.emission],
    )
    .await?;
    Ok(())
}

/// Whether the address digest `key` signed in to its account successfully
/// within `window` (V27): such an address is not held to the account's
/// budget shared by every address.
pub async fn is_known_address(
    client: &impl GenericClient,
    key: &[u8; 32],
    window: Duration,
) -> Result<bool, Error> {
    query_value(
        client,
        "SELECT EXISTS (SELECT 1 FROM sign_in_known_addresses \
         WHERE key = $1 AND last_success > now() - make_interval(secs => $2))",
        &[&key.as_slice(), &window.as_secs_f64()],
    )
    .await
}

/// Notes a successful sign-in from the address digest `key`.
pub async fn remember_address(client: &impl GenericClient, key: &[u8; 32]) -> Result<(), Error> {
    execute(
        client,
        "INSERT INTO sign_in_known_addresses (key, last_success) VALUES ($1, now()) \
         ON CONFLICT (key) DO UPDATE SET last_success = excluded.last_success",
        &[&key.as_slice()],
    )
    .await?;
    Ok(())
}
