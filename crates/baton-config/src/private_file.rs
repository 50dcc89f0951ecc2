//! Writing generated configuration that holds secrets (keystone.conf with a database password,
//! clouds.yaml with the admin password, openrc files).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Writes `text` to `path` readable by its owner only (0600), replacing the file whole: the
/// text goes to a new 0600 file beside it, is synced, and is renamed over `path`. So a reader
/// never sees half a file, and a file that existed with looser permissions does not keep them
/// (opening it with a mode would not change an existing file's mode).
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The mode given at creation is filtered by the umask; 0600 must hold whatever it is.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_looser_file_with_a_private_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clouds.yaml");
        std::fs::write(&path, "old").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_private(&path, "password: s3cret\n").expect("write_private");
        let meta = std::fs::metadata(&path).expect("stat");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "password: s3cret\n"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let err = write_private(Path::new("/nonexistent-dir/x.conf"), "x").expect_err("refused");
        assert!(
            err.to_string().starts_with("/nonexistent-dir/x.conf: "),
            "{err}"
        );
    }
}
