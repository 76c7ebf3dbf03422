//! Atomic file writes: every file flowpack writes goes to a temporary file in the same directory
//! and is renamed into place, so an interrupted run leaves no partial file.
//!
//! Temporary files and directories are named `.flowpack-tmp.<pid>.<random>`; before making one,
//! flowpack removes those in the same directory whose process is no longer alive (left by a
//! killed run). Files are created with mode `0666` and directories `0777`, less the umask.
//!
//! Outputs the user names are never replaced silently: [`refuse_existing`] refuses an existing
//! target up front (so no work is wasted) and [`place`] renames the finished temporary file into
//! place without replacing anything that appeared meanwhile, unless replacing was asked for.
//! Replacing is a rename over the old name: a symlink there is replaced itself, never written
//! through.

use std::io::{self, Read, Write};
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

/// The most a key file (minisign public or secret key) may hold: 64 KiB.
pub const KEY_FILE_LIMIT: u64 = 64 * 1024;

/// The most an overlay or configuration file may hold: 16 MiB.
pub const CONFIG_FILE_LIMIT: u64 = 16 * 1024 * 1024;

/// A file that could not be read within its bound; names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The system could not read it (missing, permissions, …).
    #[error("{path}: cannot read: {cause}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        cause: io::Error,
    },
    /// Not a regular file: a device (`/dev/zero`), a pipe, a socket or a directory.
    #[error("{path}: not a regular file (a device, pipe or directory); not read", path = .path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
    },
    /// Larger than the bound; nothing past the bound was read.
    #[error("{path}: larger than the limit of {limit} bytes for {what}; not read", path = .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound, in bytes.
        limit: u64,
        /// What kind of file the bound is for (`a key file`, `an export document`, …).
        what: &'static str,
    },
}

/// Reads the regular file `path` into `buf` (cleared first), refusing a file that is not a
/// regular file and one larger than `limit` bytes — by its size before reading, and while
/// reading (a file that grows is cut off at `limit + 1` bytes). `what` names the kind of file
/// in the error. The one bounded read of every file a user names.
pub fn read_bounded_into(
    path: &Path,
    limit: u64,
    what: &'static str,
    buf: &mut Vec<u8>,
) -> Result<(), ReadError> {
    buf.clear();
    let io = |cause| ReadError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let check = |meta: &std::fs::Metadata| {
        if !meta.is_file() {
            Err(ReadError::NotRegular {
                path: path.to_path_buf(),
            })
        } else if meta.len() > limit {
            Err(ReadError::TooLarge {
                path: path.to_path_buf(),
                limit,
                what,
            })
        } else {
            Ok(())
        }
    };
    // By the path first: opening a pipe would wait for a writer.
    check(&std::fs::metadata(path).map_err(io)?)?;
    let file = std::fs::File::open(path).map_err(io)?;
    check(&file.metadata().map_err(io)?)?;
    file.take(limit.saturating_add(1))
        .read_to_end(buf)
        .map_err(io)?;
    if buf.len() as u64 > limit {
        buf.clear();
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            limit,
            what,
        });
    }
    Ok(())
}

/// [`read_bounded_into`] a new buffer.
pub fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    read_bounded_into(path, limit, what, &mut buf)?;
    Ok(buf)
}

/// [`read_bounded`] as UTF-8 text; invalid UTF-8 is an [`ReadError::Io`] of kind `InvalidData`.
pub fn read_bounded_text(path: &Path, limit: u64, what: &'static str) -> Result<String, ReadError> {
    let bytes = read_bounded(path, limit, what)?;
    String::from_utf8(bytes).map_err(|e| ReadError::Io {
        path: path.to_path_buf(),
        cause: io::Error::new(io::ErrorKind::InvalidData, e.utf8_error()),
    })
}

/// An atomic write that failed; names the destination. A destination that exists and was not
/// to be replaced is a `cause` of kind [`io::ErrorKind::AlreadyExists`] ([`WriteError::exists`]).
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(.path, .cause))]
#[non_exhaustive]
pub struct WriteError {
    /// The destination file.
    pub path: PathBuf,
    /// The I/O error (in the message, not the error chain, so it prints once).
    #[source]
    pub cause: io::Error,
}

fn describe(path: &Path, cause: &io::Error) -> String {
    if cause.kind() == io::ErrorKind::AlreadyExists {
        format!(
            "{}: already exists and replacing it was not allowed",
            path.display()
        )
    } else {
        format!("{}: cannot write: {cause}", path.display())
    }
}

impl WriteError {
    /// The error for an output that exists and was not to be replaced.
    pub fn existing(path: &Path) -> WriteError {
        WriteError {
            path: path.to_path_buf(),
            cause: io::Error::from(io::ErrorKind::AlreadyExists),
        }
    }

    /// Whether the write was refused because the destination exists.
    pub fn exists(&self) -> bool {
        self.cause.kind() == io::ErrorKind::AlreadyExists
    }
}

/// Refuses `path` when anything is there (a file, a directory, a symlink, even a dangling one)
/// unless `replace`. Checked up front so a command fails before doing its work; [`place`]
/// checks again without a race.
pub fn refuse_existing(path: &Path, replace: bool) -> Result<(), WriteError> {
    if !replace && path.symlink_metadata().is_ok() {
        return Err(WriteError::existing(path));
    }
    Ok(())
}

/// Renames the finished temporary file `temp` (in `path`'s directory) to `path`. Without
/// `replace` nothing that exists at `path` is replaced (created exclusively: `renameat2`
/// with `RENAME_NOREPLACE`, or a hard link); with it, the rename replaces the old entry
/// atomically (a symlink is replaced, not followed). On error `temp` is removed.
pub fn place(temp: tempfile::TempPath, path: &Path, replace: bool) -> Result<(), WriteError> {
    let result = if replace {
        temp.persist(path)
    } else {
        temp.persist_noclobber(path)
    };
    result.map_err(|e| WriteError {
        path: path.to_path_buf(),
        cause: e.error,
    })
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
    write_checked(path, true, fill, |_| Ok(()))
}

/// Writes `path` atomically like [`write_atomic`], and runs `check` on the finished temporary
/// file (flushed and synced) before it is put in place with [`place`]: a file that fails its
/// check never appears at `path`. Without `replace` an existing `path` is refused.
pub(crate) fn write_checked<E>(
    path: &Path,
    replace: bool,
    fill: impl FnOnce(&mut io::BufWriter<&mut std::fs::File>) -> Result<(), E>,
    check: impl FnOnce(&Path) -> Result<(), E>,
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
    let tmp = tmp.into_temp_path();
    check(&tmp)?;
    place(tmp, path, replace)?;
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

/// Writes `bytes` to `path` atomically; an existing `path` is refused unless `replace`.
pub fn write_bytes_new(path: &Path, bytes: &[u8], replace: bool) -> Result<(), WriteError> {
    refuse_existing(path, replace)?;
    write_checked(
        path,
        replace,
        |w| {
            w.write_all(bytes).map_err(|cause| WriteError {
                path: path.to_path_buf(),
                cause,
            })
        },
        |_| Ok(()),
    )
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
    fn existing_outputs_are_refused_and_symlinks_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        write_bytes_new(&p, b"one", false).unwrap();
        let err = write_bytes_new(&p, b"two", false).unwrap_err();
        assert!(err.exists());
        assert_eq!(
            err.to_string(),
            format!(
                "{}: already exists and replacing it was not allowed",
                p.display()
            )
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        // A dangling symlink counts as existing.
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        assert!(write_bytes_new(&link, b"x", false).unwrap_err().exists());
        // Replacing a symlink replaces the link, the file it pointed to stays.
        let target = dir.path().join("target.json");
        std::fs::write(&target, b"keep").unwrap();
        let link2 = dir.path().join("link2.json");
        std::os::unix::fs::symlink(&target, &link2).unwrap();
        write_bytes_new(&link2, b"new", true).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(!link2.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&link2).unwrap(), b"new");
        // A check that fails leaves nothing.
        let q = dir.path().join("checked.json");
        let r: Result<(), WriteError> = write_checked(
            &q,
            false,
            |w| {
                w.write_all(b"x").map_err(|cause| WriteError {
                    path: q.clone(),
                    cause,
                })
            },
            |_| {
                Err(WriteError {
                    path: q.clone(),
                    cause: io::Error::other("bad"),
                })
            },
        );
        assert!(r.is_err());
        assert!(!q.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn bounded_reads_refuse_special_files_and_files_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pub");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_bounded(&p, 5, "a key file").unwrap(), b"12345");
        let err = read_bounded(&p, 4, "a key file").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: larger than the limit of 4 bytes for a key file; not read",
                p.display()
            )
        );
        // A sparse file of 1 GiB is refused by its size, never read.
        let big = dir.path().join("big.json");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        assert!(matches!(
            read_bounded(&big, 16 << 20, "an export document"),
            Err(ReadError::TooLarge { .. })
        ));
        for special in [Path::new("/dev/zero"), dir.path()] {
            let err = read_bounded(special, 16, "a key file").unwrap_err();
            assert!(matches!(err, ReadError::NotRegular { .. }), "{err}");
        }
        let err = read_bounded(&dir.path().join("missing"), 16, "a key file").unwrap_err();
        assert!(matches!(err, ReadError::Io { .. }), "{err}");
        std::fs::write(&p, b"\xff").unwrap();
        assert!(read_bounded_text(&p, 16, "a key file").is_err());
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
