//! The identity server's notion of now. Production reads the system clock; tests use a manual
//! clock they move, so that expiry, revocation and same-second rules are checked without
//! sleeping across second boundaries.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// The system clock, or a manual one shared by every clone.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that stands at `start` until moved.
    pub fn manual(start: DateTime<Utc>) -> Clock {
        Clock {
            manual: Some(Arc::new(Mutex::new(start))),
        }
    }

    /// The current time (the manual clock's, when one is set).
    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            Some(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
            None => Utc::now(),
        }
    }

    /// Moves a manual clock forward (a system clock cannot be moved: no effect).
    pub fn advance(&self, by: chrono::Duration) {
        if let Some(t) = &self.manual {
            let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
            *t += by;
        }
    }

    /// Waits until `t`: sleeps on the system clock, jumps a manual one.
    pub async fn sleep_until(&self, t: DateTime<Utc>) {
        match &self.manual {
            Some(_) => {
                let by = t - self.now();
                if by > chrono::Duration::zero() {
                    self.advance(by);
                }
            }
            None => {
                let left = (t - Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(left).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_told_and_jumps_instead_of_sleeping() {
        let start = DateTime::from_timestamp(1_000_000, 0).expect("time");
        let c = Clock::manual(start);
        let shared = c.clone();
        assert_eq!(c.now(), start);
        c.advance(chrono::Duration::seconds(5));
        assert_eq!(shared.now().timestamp(), 1_000_005);
        let before = std::time::Instant::now();
        c.sleep_until(start + chrono::Duration::hours(1)).await;
        assert!(before.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(shared.now().timestamp(), 1_003_600);
    }
}
