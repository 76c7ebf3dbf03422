//! Opening an archive: the zip layout, the entry count, each entry's name and type, then the
//! manifest's bytes. Nothing of the archive is trusted.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;

use super::super::limits::Limits;
use super::super::zipio::{self, RawEntry, Reader};
use super::super::{ArchiveError, MANIFEST_PATH};
use super::{Archive, Entry};

impl Archive {
    /// Opens `path` and checks its structure. Nothing of the archive is trusted.
    pub fn open(path: &Path, limits: &Limits) -> Result<Archive, ArchiveError> {
        let origin = path.display().to_string();
        let file = File::open(path).map_err(|error| ArchiveError::Io {
            path: origin.clone(),
            error,
        })?;
        let mut reader = open_reader(file, &origin)?;
        check_entry_count(&reader, limits, &origin)?;
        let entries = check_entries(&mut reader, &origin)?;
        let flow_entries = entries
            .iter()
            .filter(|e| e.path.starts_with("flows/") && e.path.ends_with("/export.json"))
            .count();
        let allowed = limits.entries_allowed(flow_entries);
        if entries.len() > allowed {
            return Err(ArchiveError::Limit {
                archive: origin,
                reason: format!(
                    "{} entries, more than the limit of {allowed} for {flow_entries} flow \
                     entr{} ({} per flow + {})",
                    entries.len(),
                    if flow_entries == 1 { "y" } else { "ies" },
                    limits.entries_per_flow,
                    limits.extra_entries
                ),
            });
        }
        // Entry counts are bounded far below u32::MAX by the limits checked above.
        let mut by_path: Vec<u32> = (0..entries.len())
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        by_path.sort_by(|&a, &b| {
            entries[a as usize]
                .path
                .as_bytes()
                .cmp(entries[b as usize].path.as_bytes())
        });
        let mut archive = Archive {
            origin,
            reader,
            limits: *limits,
            entries,
            by_path,
            manifest_bytes: None,
            flow_entries,
        };
        archive.load_manifest()?;
        Ok(archive)
    }

    /// Reads `flowpack.json`, when present, through the limits.
    fn load_manifest(&mut self) -> Result<(), ArchiveError> {
        if let Some(e) = self.entry(MANIFEST_PATH) {
            let mut total = 0;
            let bound = self.limits.manifest_bound(self.flow_entries);
            let bytes = self.read_bounded(&e, &mut total, bound)?;
            self.manifest_bytes = Some(bytes.into());
        }
        Ok(())
    }
}

/// Checks the zip layout and opens the zip reader: an entry at fault makes the archive hostile,
/// anything else malformed.
fn open_reader(file: File, origin: &str) -> Result<Reader, ArchiveError> {
    Reader::open(file).map_err(|e| match e {
        zipio::OpenError::Zip(e) => ArchiveError::Malformed {
            archive: origin.to_string(),
            reason: e.to_string(),
        },
        zipio::OpenError::Layout {
            entry: Some(entry),
            reason,
        } => ArchiveError::Hostile {
            archive: origin.to_string(),
            entry: display_name(&entry),
            reason,
        },
        zipio::OpenError::Layout {
            entry: None,
            reason,
        } => ArchiveError::Malformed {
            archive: origin.to_string(),
            reason,
        },
    })
}

/// The central directory lists no more entries than the limit.
fn check_entry_count(reader: &Reader, limits: &Limits, origin: &str) -> Result<(), ArchiveError> {
    if reader.len() > limits.max_entries {
        return Err(ArchiveError::Limit {
            archive: origin.to_string(),
            reason: format!(
                "{} entries, more than the limit of {}",
                reader.len(),
                limits.max_entries
            ),
        });
    }
    Ok(())
}

/// Every entry of the central directory, each checked by [`check_entry`], no name twice.
fn check_entries(reader: &mut Reader, origin: &str) -> Result<Vec<Entry>, ArchiveError> {
    let mut seen = HashSet::new();
    let mut entries = Vec::with_capacity(reader.len());
    for index in 0..reader.len() {
        let raw = reader
            .raw_entry(index)
            .map_err(|e| ArchiveError::Malformed {
                archive: origin.to_string(),
                reason: format!("entry #{index}: {e}"),
            })?;
        let path = check_entry(&raw, origin)?;
        if !seen.insert(path.clone()) {
            return Err(hostile(origin, &raw, "duplicate entry name"));
        }
        entries.push(Entry { index, path });
    }
    Ok(entries)
}

/// One entry's name is a safe relative path and the entry is an unencrypted regular file in a
/// compression method flowpack reads; its path, when it is.
fn check_entry(raw: &RawEntry, origin: &str) -> Result<String, ArchiveError> {
    let refuse = |reason: &str| Err(hostile(origin, raw, reason));
    if let Some(reason) = unsafe_path_reason(&raw.name) {
        return refuse(reason);
    }
    if raw.is_symlink {
        return refuse("symlinks are not allowed");
    }
    if raw.is_dir {
        return refuse("directory entries are not allowed");
    }
    if let Some(mode) = raw.unix_mode
        && mode & 0o170000 != 0
        && mode & 0o170000 != 0o100000
    {
        return refuse("not a regular file");
    }
    if raw.encrypted {
        return refuse("encrypted entries are not allowed");
    }
    if !raw.supported_method {
        return refuse("unsupported compression method");
    }
    String::from_utf8(raw.name.clone()).or_else(|_| refuse("not UTF-8"))
}

fn hostile(origin: &str, raw: &RawEntry, reason: &str) -> ArchiveError {
    ArchiveError::Hostile {
        archive: origin.to_string(),
        entry: display_name(&raw.name),
        reason: reason.to_string(),
    }
}

/// The longest path component an entry may have: the `NAME_MAX` of common file systems.
const MAX_COMPONENT: usize = 255;

/// Why `name` is not a safe entry path, if it is not.
pub(super) fn unsafe_path_reason(name: &[u8]) -> Option<&'static str> {
    let Ok(s) = std::str::from_utf8(name) else {
        return Some("the name is not UTF-8");
    };
    if s.is_empty() {
        return Some("the name is empty");
    }
    if s.contains('\0') {
        return Some("the name contains NUL");
    }
    if s.contains('\\') {
        return Some("the name contains a backslash");
    }
    if s.starts_with('/') {
        return Some("the path is absolute");
    }
    let b = s.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return Some("the path starts with a drive letter");
    }
    if s.split('/').any(|c| c == "..") {
        return Some("the path contains '..'");
    }
    if s.split('/').any(|c| c.is_empty() || c == ".") {
        return Some("the path has an empty or '.' component");
    }
    if s.split('/').any(|c| c.len() > MAX_COMPONENT) {
        return Some("a path component is longer than 255 bytes (no file system could unpack it)");
    }
    None
}

/// An entry name as messages show it: escaped, and lossless for names that are not UTF-8.
fn display_name(name: &[u8]) -> String {
    match std::str::from_utf8(name) {
        Ok(s) => s.escape_debug().to_string(),
        Err(_) => name.escape_ascii().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_named() {
        for (name, want) in [
            (&b"../x"[..], "the path contains '..'"),
            (b"a/../../x", "the path contains '..'"),
            (b"/etc/passwd", "the path is absolute"),
            (b"C:/x", "the path starts with a drive letter"),
            (b"a\\b", "the name contains a backslash"),
            (b"a\0b", "the name contains NUL"),
            (b"\xff", "the name is not UTF-8"),
            (b"a//b", "the path has an empty or '.' component"),
        ] {
            assert_eq!(unsafe_path_reason(name), Some(want), "{name:?}");
        }
        let long = format!("flows/{}/export.json", "a".repeat(256));
        assert_eq!(
            unsafe_path_reason(long.as_bytes()),
            Some("a path component is longer than 255 bytes (no file system could unpack it)")
        );
        assert_eq!(unsafe_path_reason(b"flows/a/export.json"), None);
    }
}
