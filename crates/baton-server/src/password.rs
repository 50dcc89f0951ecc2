//! Password hashing and verification compatible with the hashes Keystone writes.
//!
//! Keystone's default is bcrypt (`$2b$`, 12 rounds); verification dispatches on the hash prefix so
//! that hashes Keystone wrote under any `[identity] password_hash_algorithm` (bcrypt,
//! bcrypt_sha256, scrypt, pbkdf2_sha512) keep working.

use baton_config::PasswordHashAlgorithm;

use crate::error::{ApiError, ApiResult};

/// The salt Keystone uses for partial hashes of wrong passwords: the class name of its SQL
/// identity driver (so Baton's hashes equal a Keystone node's for the same password).
const PARTIAL_HASH_SALT: &str = "keystone.identity.backends.sql.Identity";

/// Keystone's `generate_partial_password_hash` (`[security_compliance]
/// report_invalid_password_hash = event`): HMAC of the password keyed with the driver's name,
/// HMAC of that keyed with `invalid_password_hash_secret_key`, base64 without padding, cut to
/// `invalid_password_hash_max_chars`. Reveals nothing usable of the password, yet equal wrong
/// passwords give equal hashes.
pub fn partial_password_hash(how: &baton_config::InvalidPasswordHash, password: &str) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    macro_rules! twice {
        ($digest:ty) => {{
            let mut salted = Hmac::<$digest>::new_from_slice(PARTIAL_HASH_SALT.as_bytes())
                .expect("HMAC takes any key");
            salted.update(password.as_bytes());
            let mut peppered = Hmac::<$digest>::new_from_slice(how.secret_key.as_bytes())
                .expect("HMAC takes any key");
            peppered.update(&salted.finalize().into_bytes());
            peppered.finalize().into_bytes().to_vec()
        }};
    }
    let digest = match how.function {
        baton_config::HashFunction::Sha1 => twice!(sha1::Sha1),
        baton_config::HashFunction::Sha224 => twice!(sha2::Sha224),
        baton_config::HashFunction::Sha256 => twice!(sha2::Sha256),
        baton_config::HashFunction::Sha384 => twice!(sha2::Sha384),
        baton_config::HashFunction::Sha512 => twice!(sha2::Sha512),
    };
    let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest);
    match how.max_chars {
        Some(n) => encoded.chars().take(n as usize).collect(),
        None => encoded,
    }
}

/// bcrypt only looks at the first 72 bytes; Keystone truncates the same way (with a warning).
const BCRYPT_MAX_BYTES: usize = 72;

/// The longest password, in bytes, that hashing with `algorithm` keeps whole under
/// `[identity] max_password_length`: bcrypt's 72 bytes at most (Keystone's
/// `verify_length_and_trunc_password`). Longer ones are truncated to it, or refused under
/// `[DEFAULT] strict_password_check`.
pub fn max_password_bytes(algorithm: PasswordHashAlgorithm, max_password_length: u32) -> usize {
    let max = max_password_length as usize;
    if algorithm == PasswordHashAlgorithm::Bcrypt && max > BCRYPT_MAX_BYTES {
        BCRYPT_MAX_BYTES
    } else {
        max
    }
}

/// Under `[DEFAULT] strict_password_check`, Keystone's PasswordVerificationError (403) for a
/// password the hash would truncate (over `[identity] max_password_length` bytes, and over 72
/// for bcrypt), instead of truncating it. Used for new passwords and for logins alike.
pub fn refuse_truncation(config: &baton_config::IdentityConfig, password: &str) -> ApiResult<()> {
    if !config.default.strict_password_check {
        return Ok(());
    }
    let limit = max_password_bytes(
        config.identity.password_hash_algorithm,
        config.identity.max_password_length,
    );
    if password.len() > limit {
        return Err(ApiError::ForbiddenNotSecurity(format!(
            "The password length must be less than or equal to {limit}. The server could not comply with the request because the password is invalid."
        )));
    }
    Ok(())
}

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The stored hash is in a format Baton cannot verify (the user cannot log in until reset).
    #[error("unsupported password hash format {0:?}")]
    UnsupportedHash(String),
    /// The hashing library failed.
    #[error("hashing failed: {0}")]
    Hash(String),
    /// `[identity] password_hash_algorithm` names an algorithm Baton cannot write.
    #[error("password hash algorithm {0:?} is not supported by Baton for new passwords")]
    UnsupportedAlgorithm(String),
}

/// Hashes a password with the configured algorithm and rounds (bcrypt 12 by default).
pub fn hash_password(
    password: &str,
    algorithm: PasswordHashAlgorithm,
    rounds: Option<u32>,
) -> Result<String, PasswordError> {
    match algorithm {
        PasswordHashAlgorithm::Bcrypt => {
            let bytes = &password.as_bytes()[..password.len().min(BCRYPT_MAX_BYTES)];
            bcrypt::hash_with_result(bytes, rounds.unwrap_or(bcrypt::DEFAULT_COST))
                .map(|h| h.format_for_version(bcrypt::Version::TwoB))
                .map_err(|e| PasswordError::Hash(e.to_string()))
        }
        other => Err(PasswordError::UnsupportedAlgorithm(format!("{other:?}"))),
    }
}

/// Checks a password against a stored hash; derived keys are compared in constant time.
pub fn verify_password(password: &str, hash: &str) -> Result<bool, PasswordError> {
    if ["$2$", "$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| hash.starts_with(p))
    {
        let bytes = &password.as_bytes()[..password.len().min(BCRYPT_MAX_BYTES)];
        return bcrypt::verify(bytes, hash).map_err(|e| PasswordError::Hash(e.to_string()));
    }
    if let Some(rest) = hash.strip_prefix("$bcrypt-sha256$") {
        return verify_bcrypt_sha256(password, rest);
    }
    if let Some(rest) = hash.strip_prefix("$pbkdf2-sha512$") {
        return verify_pbkdf2_sha512(password, rest);
    }
    if let Some(rest) = hash.strip_prefix("$scrypt$") {
        return verify_scrypt(password, rest);
    }
    // Only the scheme name is reported: the rest of the hash is secret material.
    let scheme = hash.split('$').nth(1).unwrap_or("unknown");
    Err(PasswordError::UnsupportedHash(scheme.to_string()))
}

fn malformed(scheme: &str) -> PasswordError {
    PasswordError::UnsupportedHash(format!("malformed {scheme} hash"))
}

/// passlib's "adapted base64": standard alphabet with `.` for `+`, no padding.
fn ab64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s.replace('.', "+").trim_end_matches('='))
        .ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `$bcrypt-sha256$v=2,t=2b,r=12$<salt>$<digest>`: bcrypt over base64(HMAC-SHA256(salt, password)).
fn verify_bcrypt_sha256(password: &str, rest: &str) -> Result<bool, PasswordError> {
    use base64::Engine;
    use hmac::{Mac, SimpleHmac};
    let mut parts = rest.split('$');
    let (params, salt, digest) = match (parts.next(), parts.next(), parts.next()) {
        (Some(p), Some(s), Some(d)) if s.len() == 22 && d.len() == 31 => (p, s, d),
        _ => return Err(malformed("bcrypt-sha256")),
    };
    let mut ident = "2b";
    let mut rounds = None;
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("t", v)) => ident = v,
            Some(("r", v)) => rounds = v.parse::<u32>().ok(),
            _ => {}
        }
    }
    let rounds = rounds.ok_or_else(|| malformed("bcrypt-sha256"))?;
    let mut mac = SimpleHmac::<sha2::Sha256>::new_from_slice(salt.as_bytes())
        .map_err(|_| malformed("bcrypt-sha256"))?;
    mac.update(password.as_bytes());
    let key = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let inner = format!("${ident}${rounds:02}${salt}{digest}");
    bcrypt::verify(key.as_bytes(), &inner).map_err(|e| PasswordError::Hash(e.to_string()))
}

/// `$pbkdf2-sha512$<iterations>$<salt>$<key>` (passlib's layout, ab64 fields).
fn verify_pbkdf2_sha512(password: &str, rest: &str) -> Result<bool, PasswordError> {
    let mut parts = rest.split('$');
    let (iterations, salt, key) = match (parts.next(), parts.next(), parts.next()) {
        (Some(i), Some(s), Some(k)) => (i, s, k),
        _ => return Err(malformed("pbkdf2-sha512")),
    };
    let iterations: u32 = iterations.parse().map_err(|_| malformed("pbkdf2-sha512"))?;
    let (salt, key) = match (ab64_decode(salt), ab64_decode(key)) {
        (Some(s), Some(k)) if !k.is_empty() && k.len() <= 128 => (s, k),
        _ => return Err(malformed("pbkdf2-sha512")),
    };
    if iterations == 0 || iterations > 10_000_000 {
        return Err(malformed("pbkdf2-sha512"));
    }
    let mut out = vec![0u8; key.len()];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password.as_bytes(), &salt, iterations, &mut out);
    Ok(constant_time_eq(&out, &key))
}

/// `$scrypt$ln=16,r=8,p=1$<salt>$<key>` (passlib's layout).
fn verify_scrypt(password: &str, rest: &str) -> Result<bool, PasswordError> {
    let mut parts = rest.split('$');
    let (params, salt, key) = match (parts.next(), parts.next(), parts.next()) {
        (Some(p), Some(s), Some(k)) => (p, s, k),
        _ => return Err(malformed("scrypt")),
    };
    let (mut ln, mut r, mut p) = (None, None, None);
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some(("ln", v)) => ln = v.parse::<u8>().ok(),
            Some(("r", v)) => r = v.parse::<u32>().ok(),
            Some(("p", v)) => p = v.parse::<u32>().ok(),
            _ => {}
        }
    }
    let (salt, key) = match (ab64_decode(salt), ab64_decode(key)) {
        (Some(s), Some(k)) if !k.is_empty() && k.len() <= 128 => (s, k),
        _ => return Err(malformed("scrypt")),
    };
    // Refuse parameters that would let a stored hash demand unbounded memory (ln 20 = 1 GiB at r=8).
    let (ln, r, p) = match (ln, r, p) {
        (Some(ln), Some(r), Some(p)) if ln <= 20 && r <= 16 && p <= 4 => (ln, r, p),
        _ => return Err(malformed("scrypt")),
    };
    let params = scrypt::Params::new(ln, r, p, key.len()).map_err(|_| malformed("scrypt"))?;
    let mut out = vec![0u8; key.len()];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut out)
        .map_err(|_| malformed("scrypt"))?;
    Ok(constant_time_eq(&out, &key))
}

/// A hash of a random password with the given cost, verified against when the user does not
/// exist so that an unknown name costs as much time as a wrong password.
pub fn dummy_hash(rounds: Option<u32>) -> String {
    bcrypt::hash(
        uuid::Uuid::new_v4().to_string(),
        rounds.unwrap_or(bcrypt::DEFAULT_COST),
    )
    .unwrap_or_default()
}

/// Password hashing's share of the machine (issue 15): every hash of a request (password
/// logins, application-credential secrets, new passwords and their history check) runs on
/// threads of its own. `workers` of them (by default one fewer than the cores) hash at the
/// server's priority, so a login storm always leaves a core to token validation, which never
/// hashes and so never waits here. The cores left over get spare threads at a lower priority
/// (`password_hash_nice`) that take a hash only while every worker is busy and no token has
/// been validated for [`SPARE_AFTER_QUIET`]: logins alone reach the bcrypt bound of every
/// core, and while services validate the spare threads stay out of their way (measured with
/// `scripts/bench-storm.sh`: sharing every core at a lower priority cost validation a quarter
/// of its rate, against a core kept free). A request waits at most `max_wait` for a thread
/// (a worker, or a spare one while validation is quiet), then gets a 503 with `Retry-After`
/// rather than queueing without end.
pub struct HashPool {
    workers: Threads,
    spare: Threads,
    max_wait: std::time::Duration,
    /// Milliseconds since `epoch` of the latest validation, coarsely (see `note_validation`).
    last_validation: std::sync::atomic::AtomicU64,
    epoch: std::time::Instant,
}

/// How long no token must have been validated before a spare hashing thread takes a hash.
pub const SPARE_AFTER_QUIET: std::time::Duration = std::time::Duration::from_millis(100);

/// Threads of one priority and their slots.
struct Threads {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    count: usize,
    jobs: std::sync::mpsc::Sender<HashJob>,
}

impl Threads {
    fn start(count: usize, nice: u32, name: &str) -> Threads {
        let (jobs, queue) = std::sync::mpsc::channel::<HashJob>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for i in 0..count {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || hash_thread(&queue, nice));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Threads {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(count)),
            count,
            jobs,
        }
    }
}

type HashJob = Box<dyn FnOnce() + Send>;

impl HashPool {
    /// From `[baton] password_hash_workers` (0: one fewer than the cores, at least one),
    /// `password_hash_nice` (the spare threads' niceness) and `password_hash_max_wait`
    /// (seconds). The threads end when the pool is dropped.
    pub fn new(options: &baton_config::BatonOptions) -> HashPool {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let workers = match options.password_hash_workers {
            0 => cores.saturating_sub(1).max(1),
            n => n as usize,
        };
        HashPool {
            workers: Threads::start(workers, 0, "password-hash"),
            spare: Threads::start(
                cores.saturating_sub(workers),
                options.password_hash_nice,
                "password-hash-spare",
            ),
            max_wait: std::time::Duration::from_secs(u64::from(options.password_hash_max_wait)),
            last_validation: std::sync::atomic::AtomicU64::new(0),
            epoch: std::time::Instant::now(),
        }
    }

    /// How many hashes may run at once at the server's priority.
    pub fn workers(&self) -> usize {
        self.workers.count
    }

    /// How many spare threads hash while no token is being validated.
    pub fn spare_workers(&self) -> usize {
        self.spare.count
    }

    fn now_ms(&self) -> u64 {
        // Offset by the quiet period, so that a pool that has seen no validation is quiet.
        let quiet = SPARE_AFTER_QUIET.as_millis() as u64;
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + quiet
    }

    /// A token was validated: the spare threads keep out of the way for a while. Written at
    /// most every 10 ms, so that validations on every core do not fight over the line.
    pub fn note_validation(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.now_ms();
        if now >= self.last_validation.load(Relaxed) + 10 {
            self.last_validation.store(now, Relaxed);
        }
    }

    fn validations_quiet(&self) -> bool {
        let last = self
            .last_validation
            .load(std::sync::atomic::Ordering::Relaxed);
        self.now_ms().saturating_sub(last) >= SPARE_AFTER_QUIET.as_millis() as u64
    }

    /// Runs `work` (a hash or a verification) on a hashing thread, waiting for one (see
    /// `wait_for_thread`) at most `max_wait`. The slot is held by the work itself, so a request dropped by its
    /// client does not free it while the hash still runs.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> ApiResult<T> {
        let free = |threads: &Threads| threads.slots.clone().try_acquire_owned().ok();
        let (slot, threads) = match free(&self.workers) {
            Some(slot) => (slot, &self.workers),
            None => match free(&self.spare).filter(|_| self.validations_quiet()) {
                Some(slot) => (slot, &self.spare),
                None => self.wait_for_thread().await?,
            },
        };
        let (done, out) = tokio::sync::oneshot::channel();
        let job: HashJob = Box::new(move || {
            let _ = done.send(work());
            drop(slot);
        });
        threads
            .jobs
            .send(job)
            .map_err(|_| ApiError::Internal("no password hashing thread is running".into()))?;
        // A panicking hash drops `done` (and the slot) while its thread lives on.
        out.await
            .map_err(|_| ApiError::Internal("a password hash failed".into()))
    }

    /// Waits, at most `max_wait`, for a worker, or for a spare thread too while validation is
    /// quiet (requests are then served in the order they came, whichever frees first).
    async fn wait_for_thread(&self) -> ApiResult<(tokio::sync::OwnedSemaphorePermit, &Threads)> {
        let workers = self.workers.slots.clone();
        let wait = async {
            if self.spare.count > 0 && self.validations_quiet() {
                let spare = self.spare.slots.clone();
                tokio::select! {
                    slot = workers.acquire_owned() => slot.map(|s| (s, &self.workers)),
                    slot = spare.acquire_owned() => slot.map(|s| (s, &self.spare)),
                }
            } else {
                workers.acquire_owned().await.map(|s| (s, &self.workers))
            }
        };
        tokio::time::timeout(self.max_wait, wait)
            .await
            .map_err(|_| {
                tracing::warn!(
                    workers = self.workers.count,
                    "password hashing saturated; answering 503"
                );
                ApiError::ServiceUnavailable(
                    "Password hashing is saturated; try again shortly.".into(),
                )
            })?
            .map_err(|e| ApiError::Internal(e.to_string()))
    }
}

/// One hashing thread: lowers its own priority, then runs jobs until the pool is dropped.
fn hash_thread(queue: &std::sync::Mutex<std::sync::mpsc::Receiver<HashJob>>, nice: u32) {
    lower_priority(nice);
    loop {
        // The lock is held only while waiting for the next job, never while hashing.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            tracing::error!("a password hash panicked");
        }
    }
}

/// Raises this thread's niceness by `nice` (Linux schedules threads one by one; raising
/// niceness needs no privilege). Where that fails the thread keeps the process's priority.
fn lower_priority(nice: u32) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        let now = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
        let target = (now + i32::try_from(nice).unwrap_or(19)).min(19);
        if let Err(e) = rustix::process::setpriority_process(Some(tid), target) {
            tracing::warn!(error = %e, "password hashing threads keep the normal priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(workers: u32, nice: u32) -> HashPool {
        let mut options = baton_config::IdentityConfig::default().baton;
        options.password_hash_workers = workers;
        options.password_hash_nice = nice;
        HashPool::new(&options)
    }

    /// Hashes run on threads whose niceness is raised by `password_hash_nice`, so a login
    /// storm gives way to validation; 0 leaves them at the process's priority.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_the_lowered_priority() {
        let own = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let base = own();
        let seen = pool(1, 7).run(own).await.unwrap();
        assert_eq!(seen, base, "a worker hashes at the server's priority");
        // Only spare threads, and no validation yet: a spare thread hashes, lowered.
        let seen = spare_only(7).run(own).await.unwrap();
        assert_eq!(seen, (base + 7).min(19));
        let seen = spare_only(0).run(own).await.unwrap();
        assert_eq!(seen, base);
    }

    /// A pool whose one worker is busy (held by the test) and which has spare threads.
    fn spare_only(nice: u32) -> HashPool {
        let mut options = baton_config::IdentityConfig::default().baton;
        options.password_hash_workers = 1;
        options.password_hash_nice = nice;
        options.password_hash_max_wait = 1;
        let mut pool = HashPool::new(&options);
        pool.spare = Threads::start(1, nice, "test-spare");
        pool.workers.slots = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        pool
    }

    /// While tokens are validated the spare threads take no hash: a request waits for a
    /// worker (here none frees, so 503 after `password_hash_max_wait`); once validation has
    /// been quiet for the period, a spare thread takes it.
    #[tokio::test]
    async fn spare_threads_hash_only_while_validation_is_quiet() {
        let pool = spare_only(10);
        pool.note_validation();
        let refused = pool.run(|| 1).await;
        assert!(
            matches!(refused, Err(ApiError::ServiceUnavailable(_))),
            "{refused:?}"
        );
        tokio::time::sleep(SPARE_AFTER_QUIET + std::time::Duration::from_millis(20)).await;
        assert_eq!(pool.run(|| 2).await.unwrap(), 2);
    }

    /// While validation is quiet a waiting request takes the first thread to free, a spare one
    /// included (logins alone are served in order, not only by the workers).
    #[tokio::test]
    async fn a_waiting_request_takes_a_freed_spare_thread() {
        let pool = std::sync::Arc::new(spare_only(10));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = pool.clone();
        let held = tokio::spawn(async move {
            holder
                .run(move || {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                })
                .await
        });
        started_rx.await.unwrap();
        let waiter = pool.clone();
        let waiting = tokio::spawn(async move { waiter.run(|| 3).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release_tx.send(()).unwrap();
        held.await.unwrap().unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), 3);
    }

    /// A panicking hash answers an error and leaves its slot and thread to the next request.
    #[tokio::test]
    async fn a_panicking_hash_frees_its_slot() {
        let pool = pool(1, 10);
        assert_eq!(pool.workers(), 1);
        let failed = pool.run(|| -> u32 { panic!("boom") }).await;
        assert!(matches!(failed, Err(ApiError::Internal(_))), "{failed:?}");
        assert_eq!(pool.run(|| 41 + 1).await.unwrap(), 42);
    }

    /// The values of Keystone's `generate_partial_password_hash` (Python's hmac and base64).
    #[test]
    fn partial_hashes_equal_keystones() {
        let mut how = baton_config::InvalidPasswordHash {
            secret_key: "interop-secret-key".into(),
            function: baton_config::HashFunction::Sha256,
            max_chars: None,
        };
        assert_eq!(
            partial_password_hash(&how, "not-the-password"),
            "pY6ztK75KNPK/PdB28H8bOaoFTworYA5K2jhitiZYKI"
        );
        how.function = baton_config::HashFunction::Sha1;
        how.max_chars = Some(5);
        assert_eq!(partial_password_hash(&how, "not-the-password"), "wZQXx");
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let h = hash_password("s3cret", PasswordHashAlgorithm::Bcrypt, Some(4)).unwrap();
        assert!(h.starts_with("$2b$04$"), "{h}");
        assert!(verify_password("s3cret", &h).unwrap());
        assert!(!verify_password("s3cret!", &h).unwrap());
    }

    #[test]
    fn long_passwords_are_truncated_like_keystone() {
        let long = "x".repeat(100);
        let h = hash_password(&long, PasswordHashAlgorithm::Bcrypt, Some(4)).unwrap();
        assert!(verify_password(&"x".repeat(72), &h).unwrap());
    }

    #[test]
    fn unknown_hash_formats_are_reported() {
        let e = verify_password("x", "$argon2id$v=19$m=65536$abc$def").unwrap_err();
        assert!(e.to_string().contains("argon2id"), "{e}");
        assert!(
            verify_password("x", "$scrypt$ln=40,r=8,p=1$abc$def").is_err(),
            "absurd cost refused"
        );
    }

    /// Every hash the real Keystone 30 wrote (tests/fixtures/keystone/generate.py) verifies with
    /// its password and fails with another one.
    #[test]
    fn verifies_the_hashes_keystone_wrote() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/keystone/password_hashes.json"
        );
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut algorithms = std::collections::HashSet::new();
        for h in doc["hashes"].as_array().unwrap() {
            let (password, hash) = (h["password"].as_str().unwrap(), h["hash"].as_str().unwrap());
            algorithms.insert(h["algorithm"].as_str().unwrap().to_string());
            assert!(
                verify_password(password, hash).unwrap(),
                "{} {hash}",
                h["algorithm"]
            );
            // Prepend: bcrypt ignores bytes past 72, so an appended character may change nothing.
            assert!(
                !verify_password(&format!("x{password}"), hash).unwrap(),
                "{hash}"
            );
        }
        for a in ["bcrypt", "bcrypt_sha256", "scrypt", "pbkdf2_sha512"] {
            assert!(algorithms.contains(a), "fixture lacks {a}");
        }
    }
}

/// Where a user stands under `[security_compliance] lockout_failure_attempts` (Keystone's
/// `_is_account_locked`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lockout {
    /// Lockout is off, the user is exempt (`ignore_lockout_failure_attempts`), or the failures
    /// are below the limit.
    Open,
    /// At or over the limit and within `lockout_duration` of the last failure: refused whatever
    /// the password.
    Locked,
    /// At or over the limit but the lockout ran out: the count starts again.
    Expired,
}

/// Keystone's lockout rule over a user's failed logins at `now`.
pub fn lockout(
    options: &baton_config::SecurityComplianceOptions,
    failed: baton_store::FailedLogins,
    exempt: bool,
    now: chrono::NaiveDateTime,
) -> Lockout {
    let Some(limit) = options.lockout_failure_attempts else {
        return Lockout::Open;
    };
    if exempt || failed.count < i64::from(limit) {
        return Lockout::Open;
    }
    let until = failed
        .last_at
        .map(|t| t + chrono::Duration::seconds(i64::from(options.lockout_duration)));
    match until {
        Some(until) if until <= now => Lockout::Expired,
        _ => Lockout::Locked,
    }
}

#[cfg(test)]
mod regex_tests {
    use super::*;
    use baton_config::SecurityComplianceOptions;

    #[test]
    fn python_re_match_semantics() {
        let opts = SecurityComplianceOptions {
            password_regex: Some(r"(?=.*\d)(?=.*[a-zA-Z]).{7,}".into()),
            ..baton_config::IdentityConfig::default().security_compliance
        };
        assert!(check_requirements(&opts, "abcdef1").is_ok());
        let err = check_requirements(&opts, "abcdefg").unwrap_err();
        assert_eq!(
            err.to_string(),
            "The password does not match the requirements: None."
        );
        // Anchored at the start only, like re.match: a prefix match is enough.
        let prefix = SecurityComplianceOptions {
            password_regex: Some("[a-z]{3}".into()),
            ..opts
        };
        assert!(check_requirements(&prefix, "abc!!!").is_ok());
        assert!(check_requirements(&prefix, "!abc").is_err());
    }
}

#[cfg(test)]
mod lockout_tests {
    use super::*;
    use baton_config::SecurityComplianceOptions;
    use baton_store::FailedLogins;
    use chrono::NaiveDateTime;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap_or_default()
    }

    #[test]
    fn keystone_rule() {
        let on = SecurityComplianceOptions {
            lockout_failure_attempts: Some(3),
            lockout_duration: 60,
            ..baton_config::IdentityConfig::default().security_compliance
        };
        let off = SecurityComplianceOptions {
            lockout_failure_attempts: None,
            ..on.clone()
        };
        let now = at("2026-12-03 12:00:30");
        let failed = |count| FailedLogins {
            count,
            last_at: Some(at("2026-12-03 12:00:00")),
        };
        assert_eq!(lockout(&off, failed(99), false, now), Lockout::Open);
        assert_eq!(lockout(&on, failed(2), false, now), Lockout::Open);
        assert_eq!(lockout(&on, failed(3), false, now), Lockout::Locked);
        assert_eq!(lockout(&on, failed(3), true, now), Lockout::Open);
        assert_eq!(
            lockout(&on, failed(3), false, at("2026-12-03 12:01:00")),
            Lockout::Expired
        );
        assert_eq!(
            lockout(&on, failed(3), false, at("2026-12-03 12:00:59")),
            Lockout::Locked
        );
    }
}

/// `[security_compliance] password_regex`: a new password (user create, update, self-service
/// change; not application-credential secrets) must match it from its start, as Python's
/// `re.match`; else Keystone's 400 naming `password_regex_description`.
pub fn check_requirements(
    options: &baton_config::SecurityComplianceOptions,
    password: &str,
) -> ApiResult<()> {
    let Some(pattern) = &options.password_regex else {
        return Ok(());
    };
    let matched =
        fancy_regex::Regex::new(&format!(r"\A(?:{pattern})")).and_then(|re| re.is_match(password));
    match matched {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::BadRequest(format!(
            "The password does not match the requirements: {}.",
            options
                .password_regex_description
                .as_deref()
                .unwrap_or("None")
        ))),
        // Too much backtracking on this password: refuse it rather than hang.
        Err(e) => {
            tracing::error!(error = %e, "password_regex could not be evaluated");
            Err(ApiError::BadRequest(
                "Password validation error: Unable to validate password due to invalid configuration.".into(),
            ))
        }
    }
}
