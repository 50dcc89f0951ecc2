//! Every test server's process logs at trace level into memory, and dropping the
//! `IdentityServer` checks that no password the test registered, no Fernet token and no key of the
//! server's key repositories is in any line: the Rust half of the suite-wide log scan
//! (tests/interop/log_scan.py is the other).

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// The captured log of this test process.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static CAPTURED: OnceLock<Option<Captured>> = OnceLock::new();

/// Installs the trace-level capture as this process's global subscriber (once; a test that
/// installed its own first keeps it, and nothing is captured then). Test servers call it; tests
/// of other layers (the middleware) call it too so that their lines are scanned as well.
pub fn capture_logs() {
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .ok()
            .map(|()| captured)
    });
}

/// What this test process logged so far (empty when another subscriber was installed first).
pub fn captured_text() -> String {
    CAPTURED
        .get()
        .and_then(Option::as_ref)
        .map(|c| {
            String::from_utf8_lossy(&c.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
        })
        .unwrap_or_default()
}

/// Where a Fernet token (`gAAAAA` and at least 80 more URL-safe base64 characters) starts in
/// `text`.
fn find_token(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find("gAAAAA") {
        let start = from + i;
        let run = text[start..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .count();
        if run >= 86 {
            return Some(start);
        }
        from = start + 6;
    }
    None
}

/// The keys in the key repositories under `dir` (their files' text).
fn keys_under(dir: &Path) -> Vec<String> {
    let mut keys = Vec::new();
    for repo in ["fernet-keys", "credential-keys"] {
        let Ok(entries) = std::fs::read_dir(dir.join(repo)) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                let key = text.trim().to_string();
                if key.len() >= 32 {
                    keys.push(key);
                }
            }
        }
    }
    keys
}

/// Panics naming the line (not the secret) when the captured log holds a token, one of
/// `secrets`, or a key of the repositories under `key_dir`.
pub(crate) fn assert_no_secret_logged(secrets: &[String], key_dir: &Path) {
    let Some(Some(captured)) = CAPTURED.get() else {
        return;
    };
    let log = captured.0.lock().unwrap_or_else(|e| e.into_inner());
    let text = String::from_utf8_lossy(&log);
    let keys = keys_under(key_dir);
    for (n, line) in text.lines().enumerate() {
        let what = if find_token(line).is_some() {
            Some("a Fernet token")
        } else if secrets
            .iter()
            .any(|s| !s.is_empty() && line.contains(s.as_str()))
        {
            Some("a password")
        } else if keys.iter().any(|k| line.contains(k.as_str())) {
            Some("a key")
        } else {
            None
        };
        if let Some(what) = what {
            let target: String = line.chars().take(60).collect();
            panic!("log line {} holds {what}: {target}…", n + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::find_token;

    #[test]
    fn finds_tokens_and_nothing_else() {
        let token = format!("gAAAAAB{}", "x".repeat(100));
        assert_eq!(find_token(&format!("token={token} end")), Some(6));
        assert_eq!(find_token("gAAAAAshort"), None);
        assert_eq!(find_token("audit_id=gAAAAA"), None);
    }
}
