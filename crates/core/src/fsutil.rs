//! Atomic file writes: every file flowpack writes goes to a temporary file in the same directory
//! and is renamed into place, so an interrupted run leaves no partial file.
//!
//! Temporary files and directories are named `.flowpack-tmp.<pid>.<random>`; before making one,
//! flowpack removes those in the same directory whose process is no longer alive (left by a
//! killed run). Files are created with mode `0666` and directories `0777`, less the umask.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The prefix of every temporary file and directory flowpack makes.
pub(crate) const TEMP_PREFIX: &str = ".flowpack-tmp.";

fn temp_prefix() -> String {
    format!("{TEMP_PREFIX}{}.", std::process::id())
}

/// Makes a temporary file `.flowpack-tmp.<pid>.<random>` in `dir` with `mode` less the umask,
/// after removing stale temporaries there.
pub fn temp_file_in(dir: &Path, mode: u32) -> io::Result<tempfile::NamedTempFile> {
    clean_stale(dir);
    tempfile::Builder::new()
        .prefix(&temp_prefix())
        .rand_bytes(10)
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
}

/// Makes a temporary directory `.flowpack-tmp.<pid>.<random>` in `dir` (mode `0777` less the
/// umask), after removing stale temporaries there.
pub(crate) fn temp_dir_in(dir: &Path) -> io::Result<tempfile::TempDir> {
    clean_stale(dir);
    tempfile::Builder::new()
        .prefix(&temp_prefix())
        .rand_bytes(10)
        .permissions(std::fs::Permissions::from_mode(0o777))
        .tempdir_in(dir)
}

/// Removes the temporary files and directories in `dir` left by flowpack processes that are no
/// longer running (their pid is in the name). Best effort: what cannot be removed stays, and
/// nothing is removed where the running processes cannot be listed (no `/proc`).
pub(crate) fn clean_stale(dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|r| r.split_once('.'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let path = entry.path();
        let _ = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
    }
}

/// An atomic write that failed; names the destination.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write: {cause}", path = .path.display())]
#[non_exhaustive]
pub struct WriteError {
    /// The destination file.
    pub path: PathBuf,
    /// The I/O error (in the message, not the error chain, so it prints once).
    pub cause: io::Error,
}

/// Writes `path` atomically: `fill` writes the content into a temporary file beside `path`,
/// which is flushed, synced and renamed over `path` only when `fill` succeeded. On any error the
/// temporary file is removed and `path` is untouched.
pub(crate) fn write_atomic<E>(
    path: &Path,
    fill: impl FnOnce(&mut io::BufWriter<&mut std::fs::File>) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<WriteError>,
{
    let wrap = |cause: io::Error| WriteError {
        path: path.to_path_buf(),
        cause,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = temp_file_in(dir, 0o666).map_err(wrap)?;
    {
        let mut w = io::BufWriter::new(tmp.as_file_mut());
        fill(&mut w)?;
        w.flush().map_err(wrap)?;
    }
    tmp.as_file().sync_all().map_err(wrap)?;
    tmp.persist(path).map_err(|e| wrap(e.error))?;
    Ok(())
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic(path, |w| {
        w.write_all(bytes).map_err(|cause| WriteError {
            path: path.to_path_buf(),
            cause,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
    }

    #[test]
    fn written_files_honour_the_umask_and_stale_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        write_bytes_atomic(&p, b"x").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask());
        // A dead process's leftovers go; a live one's (this process) stay; others are untouched.
        let dead = dir.path().join(format!("{TEMP_PREFIX}4294967295.abc"));
        let dead_dir = dir.path().join(format!("{TEMP_PREFIX}4294967294.def"));
        let live = dir
            .path()
            .join(format!("{TEMP_PREFIX}{}.ghi", std::process::id()));
        let other = dir.path().join(".out.json.xyz.tmp");
        std::fs::write(&dead, b"").unwrap();
        std::fs::create_dir(&dead_dir).unwrap();
        std::fs::write(dead_dir.join("f"), b"").unwrap();
        std::fs::write(&live, b"").unwrap();
        std::fs::write(&other, b"").unwrap();
        write_bytes_atomic(&p, b"y").unwrap();
        assert!(!dead.exists() && !dead_dir.exists());
        assert!(live.exists() && other.exists());
        let t = temp_dir_in(dir.path()).unwrap();
        let name = t.path().file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            name.starts_with(&format!("{TEMP_PREFIX}{}.", std::process::id())),
            "{name}"
        );
        let mode = std::fs::metadata(t.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o777 & !umask());
    }

    #[test]
    fn writes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        write_bytes_atomic(&p, b"one").unwrap();
        write_bytes_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_fill_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        std::fs::write(&p, b"keep").unwrap();
        let r: Result<(), WriteError> = write_atomic(&p, |w| {
            w.write_all(b"partial").unwrap();
            Err(WriteError {
                path: p.clone(),
                cause: io::Error::other("interrupted"),
            })
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"keep");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
