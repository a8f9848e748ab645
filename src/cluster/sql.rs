//! The lease task's statements. Every time is the database's clock (`now()`), never this
//! host's, so instances with skewed clocks agree on who holds what.

use std::time::Duration;

use deadpool_postgres::Object;

use super::Identity;

/// A statement failed (or no connection could be had).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

impl Error {
    pub fn pool(e: deadpool_postgres::PoolError) -> Error {
        Error(format!("no database connection: {e}"))
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Error {
        // The server's own message (tokio-postgres' Display says only "db error").
        match e.as_db_error() {
            Some(db) => Error(format!("database: {} ({})", db.message(), db.code().code())),
            None => Error(format!("database: {e}")),
        }
    }
}

/// One instance as `smppd status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRow {
    pub name: String,
    pub address: String,
    pub config_hash: String,
    pub version: String,
    /// Milliseconds since its last heartbeat (database clock).
    pub heartbeat_age_ms: i64,
    pub live: bool,
    pub stopping: bool,
}

/// One SMSC lease as the table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    pub smsc: String,
    pub owner: Option<String>,
    pub epoch: i64,
    /// Held and not expired.
    pub live: bool,
    /// Its owner says a transmitter is bound.
    pub usable: bool,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Upserts this instance's row with a fresh heartbeat.
pub async fn heartbeat(c: &Object, me: &Identity) -> Result<(), Error> {
    c.execute(
        "INSERT INTO cluster_instance (name, address, config_hash, version, schema_version)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET address = $2, config_hash = $3, version = $4,
             schema_version = $5, heartbeat_at = now(), stopping = false",
        &[
            &me.name,
            &me.address,
            &me.config_hash,
            &env!("CARGO_PKG_VERSION"),
            &(crate::store::postgres::current_version() as i32),
        ],
    )
    .await?;
    Ok(())
}

/// Renews the leases this instance holds; returns the ones it still holds (a lease another
/// instance took after it expired is not renewed).
pub async fn renew(
    c: &Object,
    me: &str,
    held: &[String],
    usable: &[String],
    ttl: Duration,
) -> Result<Vec<String>, Error> {
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let rows = c
        .query(
            "UPDATE smsc_lease SET expires_at = now() + make_interval(secs => $3),
                 usable = (smsc = ANY($4))
             WHERE owner = $1 AND smsc = ANY($2) AND expires_at > now()
             RETURNING smsc",
            &[&me, &held, &secs(ttl), &usable],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Takes `smsc`'s lease when nobody holds it (free, released or expired); returns its new
/// epoch, or `None` when another instance holds it.
pub async fn take(c: &Object, me: &str, smsc: &str, ttl: Duration) -> Result<Option<i64>, Error> {
    let row = c
        .query_opt(
            "INSERT INTO smsc_lease (smsc, owner, epoch, expires_at, usable, taken_at)
             VALUES ($1, $2, 1, now() + make_interval(secs => $3), false, now())
             ON CONFLICT (smsc) DO UPDATE SET owner = $2, epoch = smsc_lease.epoch + 1,
                 expires_at = now() + make_interval(secs => $3), usable = false, taken_at = now()
             WHERE smsc_lease.owner IS NULL OR smsc_lease.expires_at <= now()
             RETURNING epoch",
            &[&smsc, &me, &secs(ttl)],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Gives leases back (their binds are down): free at once for another instance.
pub async fn release(c: &Object, me: &str, smscs: &[String]) -> Result<(), Error> {
    c.execute(
        "UPDATE smsc_lease SET owner = NULL, expires_at = '-infinity', usable = false
         WHERE owner = $1 AND smsc = ANY($2)",
        &[&me, &smscs],
    )
    .await?;
    Ok(())
}

/// Takes the leader lease when nobody holds it; `Some(epoch)` when taken.
pub async fn take_leader(
    c: &Object,
    me: &str,
    name: &str,
    ttl: Duration,
) -> Result<Option<i64>, Error> {
    let row = c
        .query_opt(
            "INSERT INTO leader_lease (name, owner, epoch, expires_at)
             VALUES ($1, $2, 1, now() + make_interval(secs => $3))
             ON CONFLICT (name) DO UPDATE SET owner = $2, epoch = leader_lease.epoch + 1,
                 expires_at = now() + make_interval(secs => $3)
             WHERE leader_lease.owner IS NULL OR leader_lease.expires_at <= now()
             RETURNING epoch",
            &[&name, &me, &secs(ttl)],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Renews the leader lease; false when this instance no longer holds it.
pub async fn renew_leader(c: &Object, me: &str, name: &str, ttl: Duration) -> Result<bool, Error> {
    let n = c
        .execute(
            "UPDATE leader_lease SET expires_at = now() + make_interval(secs => $3)
             WHERE name = $1 AND owner = $2 AND expires_at > now()",
            &[&name, &me, &secs(ttl)],
        )
        .await?;
    Ok(n == 1)
}

/// The instances and leases as the database sees them now.
pub async fn view(c: &Object, ttl: Duration) -> Result<super::View, Error> {
    let instances = c
        .query(
            "SELECT name, address, config_hash, version,
                    (extract(epoch FROM now() - heartbeat_at) * 1000)::bigint,
                    heartbeat_at > now() - make_interval(secs => $1), stopping
             FROM cluster_instance ORDER BY name",
            &[&secs(ttl)],
        )
        .await?
        .iter()
        .map(|r| InstanceRow {
            name: r.get(0),
            address: r.get(1),
            config_hash: r.get(2),
            version: r.get(3),
            heartbeat_age_ms: r.get(4),
            live: r.get(5),
            stopping: r.get(6),
        })
        .collect();
    let leases = c
        .query(
            "SELECT smsc, owner, epoch, owner IS NOT NULL AND expires_at > now(), usable
             FROM smsc_lease ORDER BY smsc",
            &[],
        )
        .await?
        .iter()
        .map(|r| LeaseView {
            smsc: r.get(0),
            owner: r.get(1),
            epoch: r.get(2),
            live: r.get(3),
            usable: r.get(4),
        })
        .collect();
    Ok(super::View {
        instances,
        leases,
        ..super::View::default()
    })
}

/// A stopping instance: every lease back, its row marked stopping (not counted as live), in
/// one statement.
pub async fn leave(c: &Object, me: &str, leader: &str) -> Result<(), Error> {
    c.execute(
        "WITH smscs AS (
             UPDATE smsc_lease SET owner = NULL, expires_at = '-infinity', usable = false
             WHERE owner = $1),
         lead AS (
             UPDATE leader_lease SET owner = NULL, expires_at = '-infinity'
             WHERE name = $2 AND owner = $1)
         UPDATE cluster_instance SET stopping = true WHERE name = $1",
        &[&me, &leader],
    )
    .await?;
    Ok(())
}
