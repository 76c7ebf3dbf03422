//! Atomic file writes (DESIGN §6): every file flowpack writes goes to a temporary file in the
//! same directory and is renamed into place, so an interrupted run leaves no partial file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An atomic write that failed; names the destination.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write: {cause}", path = .path.display())]
pub struct WriteError {
    /// The destination file.
    pub path: PathBuf,
    /// The I/O error (in the message, not the error chain, so it prints once).
    pub cause: io::Error,
}

/// Writes `path` atomically: `fill` writes the content into a temporary file beside `path`,
/// which is flushed, synced and renamed over `path` only when `fill` succeeded. On any error the
/// temporary file is removed and `path` is untouched.
pub fn write_atomic<E>(
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
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(wrap)?;
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
