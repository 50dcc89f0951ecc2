//! Serving one listening socket on several threads, each with a current-thread tokio runtime
//! of its own (`[baton] worker_threads`, `baton authproxy --workers`).
//!
//! A request's tasks then never wake each other across threads, which on two cores is
//! cheaper than one multi-threaded runtime (`scripts/bench-proxy.sh`,
//! `scripts/callgrind-validate.sh`). Every thread accepts from the same socket (no
//! `SO_REUSEPORT`), so the kernel hands each connection to whichever thread waits.

use std::future::Future;

/// Runs `workers` (at least one) threads named `{name}-{i}`. `task_for` is called once per
/// thread on the caller's thread (to clone what the thread owns, a listener say) and returns
/// the thread's start: it is called on the new thread, inside its runtime, so it may register
/// sockets with it. Returns when the first thread's future ends, with its result; the others
/// keep running until the process exits.
pub async fn run_on_threads<S, F, E>(
    name: &str,
    workers: usize,
    mut task_for: impl FnMut() -> std::io::Result<S>,
) -> Result<(), E>
where
    S: FnOnce() -> F + Send + 'static,
    F: Future<Output = Result<(), E>>,
    E: From<std::io::Error> + Send + 'static,
{
    let (done, mut stopped) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..workers.max(1) {
        let start = task_for()?;
        let done = done.clone();
        std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(E::from)
                    .and_then(|runtime| runtime.block_on(start()));
                let _ = done.send(result);
            })?;
    }
    drop(done);
    stopped.recv().await.unwrap_or_else(|| {
        Err(E::from(std::io::Error::other(format!(
            "every {name} thread stopped"
        ))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_thread_to_end_decides_the_result() {
        let mut n = 0;
        let result: Result<(), std::io::Error> = run_on_threads("t", 3, || {
            n += 1;
            let me = n;
            Ok(move || async move {
                if me == 2 {
                    Err(std::io::Error::other("thread 2 failed"))
                } else {
                    std::future::pending().await
                }
            })
        })
        .await;
        assert_eq!(result.unwrap_err().to_string(), "thread 2 failed");
    }

    #[tokio::test]
    async fn a_failing_clone_is_returned_before_any_thread_runs() {
        let result: Result<(), std::io::Error> = run_on_threads("t", 2, || {
            Err::<fn() -> std::future::Ready<Result<(), std::io::Error>>, _>(std::io::Error::other(
                "no clone",
            ))
        })
        .await;
        assert_eq!(result.unwrap_err().to_string(), "no clone");
    }
}
