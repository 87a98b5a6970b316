//! Argon2id password hashing with OWASP's parameters (19 MiB, 2 passes, 1
//! lane), run on dedicated threads so it never stalls the async workers, and
//! bounded so a burst of sign-ups, or of cancelled requests, cannot exhaust
//! memory. Sign-in verifies an
//! unknown email's password against a dummy hash with the same parameters,
//! so a wrong email costs the same work as a wrong password.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
    mpsc,
};

use anyhow::Context;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version};
use password_hash_reexport::{PasswordHasher as _, SaltString, rand_core::OsRng};
use secrecy::ExposeSecret;
use tokio::sync::oneshot;

use crate::domain::{Error, Reason, user::Password};

use argon2::password_hash as password_hash_reexport;

/// The niceness of the hashing threads: under CPU contention the request
/// workers (and Postgres) come first, so a burst of sign-ups slows the
/// sign-ups, not every other call; alone on the CPU hashing runs at full
/// speed. The lowest niceness: a milder one still let a burst of accepts
/// raise the tail latency of reads (docs/performance.md); see
/// [`yield_cpu_to_requests`].
const HASHING_NICENESS: i32 = 19;

/// Marks the calling thread an idle-priority thread (`SCHED_IDLE`, at
/// [`HASHING_NICENESS`] should the policy be refused): it runs only on a
/// CPU nothing else wants, a waking request worker takes the CPU from it at
/// once, and the scheduler places waking threads on its CPU as on an idle
/// one. `SCHED_BATCH` at niceness 19 let the hashing thread finish its time
/// slice first, which the `storm` benchmark shows in ListUsers' tail
/// latency during a burst of accepts (docs/performance.md). On Linux a
/// thread id given to `setpriority` names that one thread, as 0 does to
/// `sched_setscheduler`.
#[allow(unsafe_code)]
fn yield_cpu_to_requests() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid, setpriority and sched_setscheduler only read their
        // arguments; `param` outlives the call.
        let failed = unsafe {
            let thread = libc::gettid();
            let param = libc::sched_param { sched_priority: 0 };
            libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, HASHING_NICENESS) != 0
                || libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0
        };
        if failed {
            tracing::debug!("could not lower the hashing thread's priority");
        }
    }
}

/// A hashing job for a worker thread.
type Job = Box<dyn FnOnce() + Send>;

/// How long a caller refused for a full queue is told to wait.
const BUSY_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Password hashing on a few dedicated threads behind a bounded queue.
///
/// Memory stays bounded whatever callers do: at most `workers` hashes
/// (19 MiB each) run at once, each thread reusing its own memory; a job
/// whose caller went away (a cancelled request) is skipped before it
/// starts; and when the queue is full a call fails at once with
/// RESOURCE_EXHAUSTED instead of waiting without bound.
/// The stored hash of a member with no password (one a directory created
/// without one): no password matches it, and signing in costs the same
/// hashing work as for an unknown email.
pub const NO_PASSWORD: &str = "!";

#[derive(Clone)]

pub struct PasswordHasher {
    params: Params,
    queue: mpsc::SyncSender<Job>,
    /// The PHC string of a random password nobody knows, hashed with
    /// `params` once at start: what an unknown email is verified against.
    dummy: Arc<str>,
    /// Password verifications run so far (stored or dummy hash alike).
    verifications: Arc<AtomicU64>,
    /// Jobs waiting for a hashing thread (`wowchat_password_hash_queue_depth`).
    queued: metrics::Gauge,
}

impl PasswordHasher {
    /// OWASP Password Storage Cheat Sheet: argon2id, m=19456 KiB, t=2, p=1.
    /// Starts `workers` threads taking jobs from a queue of `queue_len`, and
    /// computes the dummy hash (one hashing, a few tens of milliseconds).
    pub fn owasp(workers: usize, queue_len: usize) -> anyhow::Result<Self> {
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
        let (queue, jobs) = mpsc::sync_channel::<Job>(queue_len);
        let jobs = Arc::new(Mutex::new(jobs));
        let queued = metrics::gauge!("wowchat_password_hash_queue_depth");
        metrics::gauge!("wowchat_password_hash_queue_capacity").set(queue_len as f64);
        for n in 0..workers.max(1) {
            let jobs = Arc::clone(&jobs);
            let queued = queued.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    yield_cpu_to_requests();
                    // Ends when every sender (every clone of the hasher) is gone.
                    loop {
                        let job = match jobs.lock() {
                            Ok(jobs) => jobs.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => {
                                queued.decrement(1.0);
                                job()
                            }
                            Err(_) => return,
                        }
                    }
                })
                .context("starting a hashing thread")?;
        }
        Ok(PasswordHasher {
            params,
            queue,
            dummy: dummy.into(),
            verifications: Arc::new(AtomicU64::new(0)),
            queued,
        })
    }

    /// Runs `work` on a hashing thread, unless its caller is gone by then.
    async fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Error> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            if !reply.is_closed() {
                let _ = reply.send(work());
            }
        });
        // Counted before the send: a thread may take the job at once.
        self.queued.increment(1.0);
        self.queue
            .try_send(job)
            .inspect_err(|_| self.queued.decrement(1.0))
            .map_err(|err| match err {
                mpsc::TrySendError::Full(_) => Error::rate_limited(
                    Reason::HashingBusy,
                    "too many password operations in progress; retry shortly",
                    BUSY_RETRY_AFTER,
                ),
                mpsc::TrySendError::Disconnected(_) => {
                    Error::Unexpected(anyhow::anyhow!("the hashing threads stopped"))
                }
            })?;
        result
            .await
            .map_err(|_| Error::Unexpected(anyhow::anyhow!("a hashing thread dropped a job")))
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
        let argon2 = self.argon2();
        let phc = self
            .run(move || {
                let salt = SaltString::generate(&mut OsRng);
                argon2
                    .hash_password(password.secret().expose_secret().as_bytes(), &salt)
                    .map(|hash| hash.to_string())
                    .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
            })
            .await??;
        Ok(phc)
    }

    /// True when `password` matches the PHC string `phc`.
    pub async fn verify(&self, password: Password, phc: String) -> Result<bool, Error> {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let argon2 = self.argon2();
        let matches = self
            .run(move || {
                let parsed = PasswordHash::new(&phc)
                    .map_err(|e| anyhow::anyhow!("stored password hash: {e}"))?;
                Ok::<_, anyhow::Error>(
                    argon2
                        .verify_password(password.secret().expose_secret().as_bytes(), &parsed)
                        .is_ok(),
                )
            })
            .await??;
        Ok(matches)
    }

    /// Verifies `password` against `phc`, or, when there is none (no such
    /// user, or a member with [`NO_PASSWORD`]), against the dummy hash with
    /// the same parameters and answers false: both cost one argon2id
    /// verification.
    pub async fn verify_or_dummy(
        &self,
        password: Password,
        phc: Option<String>,
    ) -> Result<bool, Error> {
        match phc.filter(|phc| phc != NO_PASSWORD) {
            Some(phc) => self.verify(password, phc).await,
            None => {
                self.verify(password, self.dummy.to_string()).await?;
                Ok(false)
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The niceness and scheduling policy of every thread of this process
    /// named `name`, from /proc (fields 19 and 41 of a task's stat, counted
    /// after the parenthesized name).
    fn scheduling_of_threads(name: &str) -> Vec<(i32, i32)> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").expect("/proc is mounted") {
            let path = task.expect("a task entry").path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if comm.trim() != name {
                continue;
            }
            let stat = std::fs::read_to_string(path.join("stat")).expect("a task's stat");
            let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            // Fields from the 3rd on.
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            found.push((
                fields[19 - 3].parse().expect("a niceness"),
                fields[41 - 3].parse().expect("a policy"),
            ));
        }
        found
    }

    #[tokio::test]
    async fn hashing_threads_run_below_the_request_workers_priority() {
        let hasher = PasswordHasher::owasp(2, 4).expect("starts");
        let password = Password::parse("correct horse battery").expect("a password");
        hasher.hash(password).await.expect("hashes");
        let scheduling = scheduling_of_threads("argon2-1");
        assert!(!scheduling.is_empty(), "the hashing threads are found");
        assert!(
            scheduling
                .iter()
                .all(|&(nice, policy)| nice == HASHING_NICENESS && policy == libc::SCHED_IDLE),
            "{scheduling:?}"
        );
    }
}
