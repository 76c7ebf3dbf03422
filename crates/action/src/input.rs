//! What the actions read: an export document, or an archive and its flow documents; and the
//! checks that a file is the kind the action expects.
//!
//! A path is taken as an archive when its name ends in `.flowpack` or its first bytes are a zip's
//! local header (`PK\x03\x04`). Before an archive is handed to the core reader, its first bytes
//! are checked here, so a text file named `x.flowpack` is refused as "not a flowpack archive"
//! rather than with the zip reader's own words, and an export document given where an archive is
//! expected is refused with the command that packs it. Archive entries are named
//! `ARCHIVE!entry` in every message and report.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Whether a command-line argument is an `oci://` reference rather than a path.
pub use flowpack_client::oci::is_reference;
use flowpack_client::oci::{self, Credentials, OciError, PulledArchive, Reference};
use flowpack_core::archive::{Archive, ArchiveError, FlowSettings, Limits, Manifest};
use flowpack_core::budget::ParseBudget;
use flowpack_core::{Document, DocumentError};

use crate::error::{Categorize, Category, Remedy};

/// The first four bytes of every zip archive (a local file header).
const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";

/// Errors reading an input file; each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file could not be read.
    #[error("{path}: cannot read: {cause}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        cause: std::io::Error,
    },
    /// An archive was expected; the file is neither a zip nor JSON.
    #[error("{path}: not a flowpack archive (it does not start with a zip header)")]
    NotAnArchive {
        /// The file.
        path: String,
    },
    /// An archive was expected; the file is JSON (an export document).
    #[error(
        "{path}: not a flowpack archive but JSON (an export document?); pack it into \
         an archive first (e.g. {suggested})"
    )]
    DocumentNotArchive {
        /// The file.
        path: String,
        /// A name for the archive to make.
        suggested: String,
    },
    /// An export document was expected; the file is an archive.
    #[error("{path}: a flowpack archive, not an export document; unpack it first")]
    ArchiveNotDocument {
        /// The file.
        path: String,
    },
    /// The archive could not be read or is unsafe.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The document could not be read or parsed.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// An `oci://` reference could not be pulled (malformed, unknown, not a flowpack artifact,
    /// content not matching its digest, the registry unreachable).
    #[error(transparent)]
    Registry(#[from] OciError),
    /// A document's step graph could not be read (a version-1 document that does not migrate).
    #[error(transparent)]
    Graph(#[from] flowpack_core::graph::GraphError),
    /// An `s3://` object could not be read (settings, credentials, the store unreachable, a
    /// body that does not match the object).
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

impl Categorize for InputError {
    fn category(&self) -> Category {
        match self {
            InputError::Read { .. } => Category::CouldNotRun,
            InputError::Archive(e) => e.category(),
            InputError::Document(e) => e.category(),
            InputError::Registry(e) => e.category(),
            InputError::Storage(e) => e.category(),
            _ => Category::Rejected,
        }
    }

    fn remedy(&self) -> Option<Remedy> {
        match self {
            InputError::DocumentNotArchive { path, suggested } => Some(Remedy::PackDocument {
                path: path.clone(),
                suggested: suggested.clone(),
            }),
            InputError::ArchiveNotDocument { path } => {
                Some(Remedy::UnpackArchive { path: path.clone() })
            }
            InputError::Archive(e) => e.remedy(),
            InputError::Registry(e) => e.remedy(),
            _ => None,
        }
    }
}

/// What a file starts with.
enum Kind {
    Zip,
    Json,
    Other,
}

fn sniff(path: &Path) -> Result<Kind, InputError> {
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path)
        .and_then(|f| f.take(64).read_to_end(&mut head))
        .map_err(|cause| InputError::Read {
            path: path.display().to_string(),
            cause,
        })?;
    if head.starts_with(&ZIP_MAGIC) {
        return Ok(Kind::Zip);
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
    Ok(
        match text.iter().find(|b| !b.is_ascii_whitespace()).copied() {
            Some(b'{') | Some(b'[') => Kind::Json,
            _ => Kind::Other,
        },
    )
}

/// Whether `path` is to be read as an archive: by its name, else by its first bytes.
pub(crate) fn is_archive(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "flowpack") || matches!(sniff(path), Ok(Kind::Zip))
}

/// Checks that `path` starts like a zip archive; refuses a document or any other file with a
/// message saying what it is and what to do instead.
pub fn expect_archive(path: &Path) -> Result<(), InputError> {
    let shown = path.display().to_string();
    match sniff(path)? {
        Kind::Zip => Ok(()),
        Kind::Json => Err(InputError::DocumentNotArchive {
            suggested: path.with_extension("flowpack").display().to_string(),
            path: shown,
        }),
        Kind::Other => Err(InputError::NotAnArchive { path: shown }),
    }
}

/// Checks that `path` is not a zip archive (an export document is expected).
pub(crate) fn expect_document(path: &Path) -> Result<(), InputError> {
    match sniff(path)? {
        Kind::Zip => Err(InputError::ArchiveNotDocument {
            path: path.display().to_string(),
        }),
        _ => Ok(()),
    }
}

/// An archive to read, named on the command line as a path or an `oci://` reference; see
/// [`open_archive_spec`]. A pulled archive lives in a temporary file that is removed when this
/// value is dropped, so keep it alive for as long as the command reads the archive.
#[derive(Debug)]
#[non_exhaustive]
pub struct ArchiveSource {
    /// The file to read: the path as given, or the temporary file a reference was pulled into.
    pub path: PathBuf,
    /// How messages and reports name the archive: the path as given, or the reference pinned
    /// to the digest it resolved to (`oci://HOST/REPO:TAG@sha256:<hex>`).
    pub shown: String,
    /// The manifest digest a reference resolved to (`sha256:<hex>`); `None` for a path.
    pub digest: Option<String>,
    /// Keeps the pulled or downloaded temporary file alive.
    _pulled: Option<Held>,
}

/// The temporary file an [`ArchiveSource`] keeps alive.
#[derive(Debug)]
enum Held {
    Pulled(#[allow(dead_code)] PulledArchive),
    Downloaded(#[allow(dead_code)] crate::storage::Downloaded),
}

impl ArchiveSource {
    /// A local file, named as given.
    pub fn file(path: impl Into<PathBuf>) -> ArchiveSource {
        let path = path.into();
        ArchiveSource {
            shown: path.display().to_string(),
            path,
            digest: None,
            _pulled: None,
        }
    }
}

/// Opens what a command was given where an archive is read: `spec` is either a path (returned
/// as is, not read yet) or an `oci://HOST[:PORT]/REPO(:TAG|@sha256:HEX)` reference, pulled into
/// a temporary file in the system's temporary directory with the registry checks of
/// `flowpack pull` (media types, the layer's size and digest, the archive size limit). The
/// archive itself is not verified here: the caller reads it as it reads a local file.
/// `plain_http` speaks `http://` to the registry (never automatic); `credentials` are sent
/// when the registry asks (basic or the bearer-token flow).
///
/// ```no_run
/// use flowpack_action::input::open_archive_spec;
///
/// let src = open_archive_spec("oci://127.0.0.1:5000/team/orders:1.2.0", true, None)?;
/// println!("{} resolved to {:?}", src.shown, src.digest);
/// // read src.path while `src` is alive
/// # Ok::<(), flowpack_action::input::InputError>(())
/// ```
pub fn open_archive_spec(
    spec: &str,
    plain_http: bool,
    credentials: Option<&Credentials>,
) -> Result<ArchiveSource, InputError> {
    open_archive_spec_within(spec, plain_http, credentials, Some(oci::DEFAULT_DEADLINE))
}

/// [`open_archive_spec`] with an overall time limit for the pull of an `oci://` reference
/// (`None`: none; a registry that trickles bytes is still stopped by its idle timeout).
pub fn open_archive_spec_within(
    spec: &str,
    plain_http: bool,
    credentials: Option<&Credentials>,
    deadline: Option<std::time::Duration>,
) -> Result<ArchiveSource, InputError> {
    if crate::storage::is_s3(spec) {
        return open_s3(spec);
    }
    if !is_reference(spec) {
        return Ok(ArchiveSource::file(spec));
    }
    let reference = Reference::parse(spec)?;
    let mut options = oci::FetchOptions::default();
    options.max_size = flowpack_core::archive::Limits::default().max_total_size;
    options.registry.plain_http = plain_http;
    options.registry.credentials = credentials.cloned();
    options.registry.deadline = deadline;
    let pulled = oci::pull_to_temp(&reference, &std::env::temp_dir(), &options)?;
    Ok(ArchiveSource {
        path: pulled.path().to_path_buf(),
        shown: pulled.pinned(),
        digest: Some(pulled.digest.clone()),
        _pulled: Some(Held::Pulled(pulled)),
    })
}

/// An `s3://BUCKET/KEY` archive, downloaded into a private temporary file within the archive
/// size limit (see [`crate::storage::Store::get_to_temp`]).
fn open_s3(spec: &str) -> Result<ArchiveSource, InputError> {
    let location = crate::storage::S3Location::parse(spec)?;
    if location.prefix.is_empty() {
        return Err(crate::storage::StorageError::BadLocation {
            location: spec.to_string(),
            reason: "it names a bucket, not an object".into(),
        }
        .into());
    }
    let store = crate::storage::Store::open_configured(&location)?;
    let downloaded = store.get_to_temp(
        &location.prefix,
        &std::env::temp_dir(),
        crate::storage::MAX_OBJECT_BYTES,
    )?;
    Ok(ArchiveSource {
        path: downloaded.path().to_path_buf(),
        shown: downloaded.shown.clone(),
        digest: None,
        _pulled: Some(Held::Downloaded(downloaded)),
    })
}

/// The name of an archive entry in messages and reports: `ARCHIVE!entry` (the core's
/// [`entry_name`](flowpack_core::archive::entry_name)).
pub(crate) fn entry_origin(archive: &str, entry: &str) -> String {
    flowpack_core::archive::entry_name(archive, entry)
}

/// One document read: where it came from (`FILE` or `ARCHIVE!entry`), its bytes when read from a
/// plain file and asked for, and the parsed document.
#[derive(Debug)]
#[non_exhaustive]
pub struct Input {
    /// `FILE` or `ARCHIVE!flows/<slug>/export.json`.
    pub origin: String,
    /// The file's bytes (plain files, when kept).
    pub bytes: Option<Vec<u8>>,
    /// The document.
    pub document: Document,
}

/// What one path held, each document already turned into a `T` by the caller (so only one
/// parsed document is alive at a time).
#[derive(Debug)]
#[non_exhaustive]
pub enum Loaded<T> {
    /// A plain export document.
    Document(T),
    /// An archive: its manifest and what became of its flow documents.
    Archive {
        /// The archive's manifest.
        manifest: Box<Manifest>,
        /// What became of its flow documents, in entry order.
        flows: Vec<T>,
        /// The flows' settings (`flow.json`, manifest version 2) by the export document's entry
        /// path, each checked against its digest.
        settings: BTreeMap<String, FlowSettings>,
    },
}

/// Loads a document or an archive's flow documents, passing each to `each`, reading a plain
/// document through `buf` (a buffer the caller reuses from file to file) and keeping its bytes
/// only when `keep_bytes`. Archives are opened with the default [`Limits`], so hostile ones are
/// refused naming the entry.
///
/// Memory stays bounded: a plain document is checked against the per-document bound before it
/// is read; an archive has every entry read through the limits keeping nothing (so a bomb is
/// named as such, even when its manifest is broken too), then its manifest checked, then its
/// flow documents parsed one at a time, each checked against the bound before it is parsed.
pub fn load<T>(
    path: &Path,
    buf: &mut Vec<u8>,
    keep_bytes: bool,
    each: impl FnMut(Input) -> T,
) -> Result<Loaded<T>, InputError> {
    load_named(path, &path.display().to_string(), buf, keep_bytes, each)
}

/// [`load`], naming the file `shown` in origins and errors of its documents (an archive pulled
/// from a registry is read from a temporary file but named by its reference).
pub(crate) fn load_named<T>(
    path: &Path,
    shown: &str,
    buf: &mut Vec<u8>,
    keep_bytes: bool,
    mut each: impl FnMut(Input) -> T,
) -> Result<Loaded<T>, InputError> {
    let shown = shown.to_string();
    if !is_archive(path) {
        let limits = Limits::default();
        flowpack_core::document::read_document_file(path, &shown, &limits.document, buf)?;
        let (document, _permit) =
            Document::parse_within(buf, &shown, &limits.document, parse_budget())?;
        return Ok(Loaded::Document(each(Input {
            origin: shown,
            bytes: keep_bytes.then(|| buf.clone()),
            document,
        })));
    }
    expect_archive(path)?;
    let named = |e: ArchiveError| InputError::Archive(rename_archive(e, path, &shown));
    let mut archive = Archive::open(path, &Limits::default()).map_err(named)?;
    archive.check_structure().map_err(named)?;
    let manifest = archive.manifest().map_err(named)?;
    let mut flows = Vec::new();
    let bound = archive.limits().document;
    for entry in archive.flow_entry_paths() {
        let bytes = archive.document_bytes(&entry).map_err(named)?;
        let origin = entry_origin(&shown, &entry);
        let (document, _permit) = Document::parse_within(&bytes, &origin, &bound, parse_budget())
            .map_err(|e| named(e.into()))?;
        drop(bytes);
        flows.push(each(Input {
            origin,
            bytes: None,
            document,
        }));
    }
    let mut settings = BTreeMap::new();
    for record in &manifest.flows {
        if let Some(s) = archive.flow_settings(record).map_err(named)? {
            settings.insert(record.path.clone(), s);
        }
    }
    Ok(Loaded::Archive {
        manifest: Box::new(manifest),
        flows,
        settings,
    })
}

/// The parse budget shared by every document [`load`] reads, whatever thread reads it: commands
/// that load several inputs in parallel (`validate`, `diff`) then hold at most one budget's
/// worth of parsed documents (see [`flowpack_core::budget`]).
pub(crate) fn parse_budget() -> &'static ParseBudget {
    static BUDGET: std::sync::OnceLock<ParseBudget> = std::sync::OnceLock::new();
    BUDGET.get_or_init(ParseBudget::default)
}

/// The `*.json` files below `dir`, recursively, in sorted path order, leaving out files named
/// in `skip`. Symbolic links are followed (a link to a directory of documents is a normal way to
/// lay out inputs), but a link back to one of its own ancestors is refused naming it, not walked
/// forever.
pub fn json_files(dir: &Path, skip: &[&str]) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).display().to_string();
            match e.loop_ancestor() {
                Some(ancestor) => InputError::Read {
                    cause: std::io::Error::other(format!(
                        "a symbolic link loop (back to {})",
                        ancestor.display()
                    )),
                    path,
                },
                None => InputError::Read {
                    cause: e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("cannot walk")),
                    path,
                },
            }
        })?;
        let name = entry.file_name().to_string_lossy();
        if entry.file_type().is_file()
            && name.ends_with(".json")
            && !skip.iter().any(|s| *s == name)
        {
            out.push(entry.into_path());
        }
    }
    Ok(out)
}

/// `e` with the archive it names changed from `path` (a temporary file) to `shown` (the
/// reference it was pulled from), so a message names what the user gave.
pub(crate) fn rename_archive(e: ArchiveError, path: &Path, shown: &str) -> ArchiveError {
    let from = path.display().to_string();
    if from == shown {
        return e;
    }
    let fix = |a: String| if a == from { shown.to_string() } else { a };
    match e {
        ArchiveError::Malformed { archive, reason } => ArchiveError::Malformed {
            archive: fix(archive),
            reason,
        },
        ArchiveError::Hostile {
            archive,
            entry,
            reason,
        } => ArchiveError::Hostile {
            archive: fix(archive),
            entry,
            reason,
        },
        ArchiveError::Limit { archive, reason } => ArchiveError::Limit {
            archive: fix(archive),
            reason,
        },
        ArchiveError::Manifest { archive, reason } => ArchiveError::Manifest {
            archive: fix(archive),
            reason,
        },
        ArchiveError::Digest {
            archive,
            entry,
            reason,
        } => ArchiveError::Digest {
            archive: fix(archive),
            entry,
            reason,
        },
        ArchiveError::Verification {
            archive,
            summary,
            report,
        } => ArchiveError::Verification {
            archive: fix(archive),
            summary: summary.replace(&from, shown),
            report,
        },
        ArchiveError::Io { path, error } => ArchiveError::Io {
            path: fix(path),
            error,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_named_flowpack_is_not_an_archive_and_json_is_told_to_pack() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("x.flowpack");
        std::fs::write(&text, "hello\n").unwrap();
        let err = expect_archive(&text).unwrap_err();
        assert!(
            err.to_string().ends_with(
                "x.flowpack: not a flowpack archive (it does not start with a zip header)"
            ),
            "{err}"
        );
        assert_eq!(err.category(), Category::Rejected);
        let json = dir.path().join("flow.json");
        std::fs::write(&json, "\u{feff}  {\"flow\": {}}").unwrap();
        let err = expect_archive(&json).unwrap_err();
        assert!(
            err.to_string().contains("pack it into an archive first"),
            "{err}"
        );
        assert!(
            matches!(err.remedy(), Some(Remedy::PackDocument { suggested, .. }) if suggested.ends_with("flow.flowpack")),
            "{err}"
        );
        let missing = expect_archive(&dir.path().join("none.flowpack")).unwrap_err();
        assert_eq!(missing.category(), Category::CouldNotRun);
        assert!(is_archive(&text));
        assert!(!is_archive(&json));
    }

    #[cfg(unix)]
    #[test]
    fn json_files_are_sorted_skip_names_and_report_a_link_loop() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("b/c")).unwrap();
        for rel in [
            "b/c/z.json",
            "a.json",
            "flowpack.json",
            "notes.txt",
            "b/y.json",
        ] {
            std::fs::write(d.join(rel), "{}").unwrap();
        }
        let files = json_files(d, &["flowpack.json"]).unwrap();
        let rel: Vec<_> = files.iter().map(|f| f.strip_prefix(d).unwrap()).collect();
        assert_eq!(
            rel,
            [
                Path::new("a.json"),
                Path::new("b/c/z.json"),
                Path::new("b/y.json")
            ]
        );
        std::os::unix::fs::symlink(d.join("b"), d.join("b/c/loop")).unwrap();
        let err = json_files(d, &[]).unwrap_err();
        assert!(err.to_string().contains("symbolic link loop"), "{err}");
        assert_eq!(err.category(), Category::CouldNotRun);
    }

    #[test]
    fn a_path_spec_is_passed_through_and_a_bad_reference_is_refused_naming_it() {
        let src = open_archive_spec("dir/app.flowpack", false, None).unwrap();
        assert_eq!(src.path, PathBuf::from("dir/app.flowpack"));
        assert_eq!(src.shown, "dir/app.flowpack");
        assert_eq!(src.digest, None);
        let err = open_archive_spec("oci://registry.example.com", false, None).unwrap_err();
        assert!(matches!(err, InputError::Registry(_)), "{err}");
        assert!(
            err.to_string().starts_with("oci://registry.example.com"),
            "{err}"
        );
        assert_eq!(err.category(), Category::CouldNotRun);
    }

    #[test]
    fn errors_about_a_pulled_file_name_the_reference() {
        let tmp = Path::new("/tmp/.flowpack-tmp.1.abc");
        let shown = "oci://r.example/a:1@sha256:00";
        let e = ArchiveError::Digest {
            archive: tmp.display().to_string(),
            entry: "flows/a/export.json".into(),
            reason: "sha256 differs".into(),
        };
        let renamed = rename_archive(e, tmp, shown);
        assert_eq!(
            renamed.to_string(),
            "oci://r.example/a:1@sha256:00!flows/a/export.json: sha256 differs"
        );
    }
}
