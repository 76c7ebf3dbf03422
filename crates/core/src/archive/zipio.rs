//! The one place flowpack touches the `zip` crate, so it can be upgraded in one place.
//!
//! Writing: [`compress`] makes a single-entry compressed blob on any thread; a [`Spool`] collects
//! blobs (unsorted, on disk, so memory stays bounded); [`write_sorted`] raw-copies them into the
//! final archive in path order under their final names. Reading: [`Reader`] exposes the central
//! directory's raw facts ([`RawEntry`]) and decompressing readers.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

pub use zip::result::ZipError;
pub use zip::write::PreparedZipFile as Compressed;

/// Fixed entry options: deflate at `level`, timestamp `mtime`, mode 0644, no extra fields.
#[derive(Debug, Clone, Copy)]
pub struct EntryOptions {
    /// Deflate level (0-9).
    pub level: u32,
    /// `(year, month, day, hour, minute, second)`; years before 1980 are clamped to 1980-01-01.
    pub mtime: (u16, u8, u8, u8, u8, u8),
}

impl EntryOptions {
    fn to_zip(self) -> SimpleFileOptions {
        let (y, mo, d, h, mi, s) = self.mtime;
        let dt = if y < 1980 {
            DateTime::default()
        } else {
            DateTime::from_date_and_time(y, mo, d, h, mi, s.min(58)).unwrap_or_default()
        };
        SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(i64::from(self.level.min(9))))
            .last_modified_time(dt)
            .unix_permissions(0o644)
    }
}

/// Compresses `data` as one entry named `name`.
pub fn compress(name: &str, data: &[u8], opts: EntryOptions) -> Result<Compressed, ZipError> {
    Compressed::from_data(name, opts.to_zip(), data)
}

/// An unsorted on-disk collection of compressed entries.
pub struct Spool {
    writer: ZipWriter<io::BufWriter<File>>,
}

impl Spool {
    /// A spool writing into `file` (normally an anonymous temporary file).
    pub fn new(file: File) -> Spool {
        Spool {
            writer: ZipWriter::new(io::BufWriter::new(file)),
        }
    }

    /// Appends one compressed entry.
    pub fn add(&mut self, entry: Compressed) -> Result<(), ZipError> {
        self.writer.add_prepared_file(entry)
    }

    /// Finishes the spool and opens it for reading.
    pub fn into_reader(self) -> Result<ZipArchive<BufReader<File>>, ZipError> {
        let mut buf = self.writer.finish()?;
        buf.flush()?;
        let mut file = buf.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        ZipArchive::new(BufReader::new(file))
    }
}

/// One output entry: either copied raw from a source archive entry, or freshly compressed.
pub enum Source {
    /// Raw-copy entry `index` of the source archive, renamed to the output name.
    Spooled(usize),
    /// A freshly compressed entry (its name is replaced by the output name).
    Fresh(Compressed),
}

/// Writes a zip to `out`: for each `(name, source)` in order, the entry under `name`.
pub fn write_sorted<W: Write + Seek>(
    out: W,
    source: &mut ZipArchive<BufReader<File>>,
    entries: impl IntoIterator<Item = (String, Source)>,
) -> Result<W, ZipError> {
    let mut w = ZipWriter::new(out);
    for (name, slot) in entries {
        match slot {
            Source::Spooled(index) => {
                let file = source.by_index_raw(index)?;
                w.raw_copy_file_rename(file, name)?;
            }
            Source::Fresh(c) => {
                if c.file_name_raw() != name.as_bytes() {
                    return Err(ZipError::InvalidArchive(
                        "fresh entry name does not match its slot".into(),
                    ));
                }
                w.add_prepared_file(c)?;
            }
        }
    }
    w.finish()
}

/// What the central directory says about one entry (never trusted for sizes).
#[derive(Debug, Clone)]
pub struct RawEntry {
    /// The raw name bytes.
    pub name: Vec<u8>,
    /// Directory entry (name ends in `/` or a directory mode).
    pub is_dir: bool,
    /// Symlink (Unix mode).
    pub is_symlink: bool,
    /// The Unix mode, when recorded.
    pub unix_mode: Option<u32>,
    /// Encrypted entry.
    pub encrypted: bool,
    /// Compression method is one flowpack reads (stored or deflated).
    pub supported_method: bool,
    /// The declared compressed size (the bytes the entry occupies in the file).
    pub compressed_size: u64,
}

/// A zip opened for reading.
pub struct Reader {
    archive: ZipArchive<BufReader<File>>,
}

impl Reader {
    /// Parses the central directory of `file`.
    pub fn open(file: File) -> Result<Reader, ZipError> {
        Ok(Reader {
            archive: ZipArchive::new(BufReader::new(file))?,
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.archive.len()
    }

    /// The raw facts of entry `index`.
    pub fn raw_entry(&mut self, index: usize) -> Result<RawEntry, ZipError> {
        let f = self.archive.by_index_raw(index)?;
        Ok(RawEntry {
            name: f.name_raw().to_vec(),
            is_dir: f.is_dir(),
            is_symlink: f.is_symlink(),
            unix_mode: f.unix_mode(),
            encrypted: f.encrypted(),
            supported_method: matches!(
                f.compression(),
                CompressionMethod::Stored | CompressionMethod::Deflated
            ),
            compressed_size: f.compressed_size(),
        })
    }

    /// Reads entry `index` decompressed (CRC checked at the end), passing chunks to `sink`.
    pub fn read_entry(
        &mut self,
        index: usize,
        mut sink: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), ZipError> {
        let mut f = self.archive.by_index(index)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            sink(&buf[..n])?;
        }
    }

    /// The underlying archive, for raw copies.
    pub fn archive_mut(&mut self) -> &mut ZipArchive<BufReader<File>> {
        &mut self.archive
    }

    /// The fixed timestamp of entry `index`, as entry options for a new entry beside it.
    pub fn entry_options(&mut self, index: usize, level: u32) -> Result<EntryOptions, ZipError> {
        let f = self.archive.by_index_raw(index)?;
        let dt = f.last_modified().unwrap_or_default();
        Ok(EntryOptions {
            level,
            mtime: (
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
            ),
        })
    }
}
