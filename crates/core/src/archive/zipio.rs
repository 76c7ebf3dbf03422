//! The one place flowpack touches the `zip` crate, so it can be upgraded in one place.
//!
//! Writing: [`compress`] makes a single-entry compressed blob on any thread; a [`Spool`] collects
//! blobs (unsorted, on disk, so memory stays bounded); [`write_sorted`] raw-copies them into the
//! final archive in path order under their final names. Reading: [`Reader`] exposes the central
//! directory's raw facts ([`RawEntry`]) and decompressing readers.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

pub use zip::result::ZipError;
pub use zip::write::PreparedZipFile as Compressed;

/// Fixed entry options: deflate at `level`, timestamp `mtime`, mode 0644, no extra fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryOptions {
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
pub(crate) fn compress(
    name: &str,
    data: &[u8],
    opts: EntryOptions,
) -> Result<Compressed, ZipError> {
    Compressed::from_data(name, opts.to_zip(), data)
}

/// An unsorted on-disk collection of compressed entries.
pub(crate) struct Spool {
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
    pub(crate) fn into_reader(self) -> Result<ZipArchive<BufReader<File>>, ZipError> {
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
pub(crate) fn write_sorted<W: Write + Seek, R: Read + Seek>(
    out: W,
    source: &mut ZipArchive<R>,
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
pub(crate) struct RawEntry {
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
    /// The declared uncompressed size (zip64 resolved): checked against the bytes measured
    /// while reading, never used to size anything.
    pub declared_size: u64,
}

/// Why an archive was refused before the zip library read it.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum OpenError {
    /// The zip library refused it, or it could not be read.
    Zip(ZipError),
    /// The layout is not the one view every zip tool agrees on; `entry` names the entry at fault
    /// when one is.
    Layout {
        /// The entry's raw name, when one entry is at fault.
        entry: Option<Vec<u8>>,
        /// What is wrong.
        reason: String,
    },
}

impl From<ZipError> for OpenError {
    fn from(e: ZipError) -> Self {
        OpenError::Zip(e)
    }
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Zip(ZipError::Io(e))
    }
}

/// One open file read at positions of its own (`pread`), so that clones of a [`Reader`] read
/// the same file on several threads without sharing a file offset. The zip library buffers
/// what it decompresses; headers are a few small reads.
#[derive(Debug, Clone)]
pub(crate) struct SharedFile {
    file: std::sync::Arc<File>,
    pos: u64,
    len: u64,
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = pread(&self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let pos = match to {
            io::SeekFrom::Start(p) => Some(p),
            io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::other("seek before the start of the file"))?;
        Ok(self.pos)
    }
}

#[cfg(unix)]
fn pread(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, pos)
}

#[cfg(windows)]
fn pread(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, pos)
}

/// A zip opened for reading. A clone reads the same open file (its own position, the central
/// directory shared): one per thread reads entries in parallel.
#[derive(Clone)]
pub(crate) struct Reader {
    archive: ZipArchive<SharedFile>,
}

impl Reader {
    /// Checks the layout of `file` (see [`check_layout`]) and parses its central directory.
    pub fn open(mut file: File) -> Result<Reader, OpenError> {
        let layout = check_layout(&mut file)?;
        let len = file.metadata()?.len();
        let archive = ZipArchive::new(SharedFile {
            file: std::sync::Arc::new(file),
            pos: 0,
            len,
        })?;
        // The zip library must see the same archive: no offset, no comment, the same central
        // directory and every name once (it keeps one of each name silently).
        let disagrees = if archive.len() != layout.entries || archive.has_duplicate_names() {
            Some("the zip library lists the entries differently (duplicate names?)")
        } else if archive.offset() != 0 || archive.central_directory_start() != layout.cd_offset {
            Some("the zip library finds the central directory elsewhere")
        } else if !archive.comment().is_empty() {
            Some("a zip comment is not allowed")
        } else {
            None
        };
        if let Some(reason) = disagrees {
            return Err(OpenError::Layout {
                entry: None,
                reason: reason.into(),
            });
        }
        Ok(Reader { archive })
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.archive.len()
    }

    /// The raw facts of entry `index`.
    pub(crate) fn raw_entry(&mut self, index: usize) -> Result<RawEntry, ZipError> {
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
            declared_size: f.size(),
        })
    }

    /// Reads entry `index` decompressed (CRC checked at the end), passing chunks to `sink`.
    pub(crate) fn read_entry(
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
    pub(crate) fn archive_mut(&mut self) -> &mut ZipArchive<SharedFile> {
        &mut self.archive
    }

    /// The fixed timestamp of entry `index`, as entry options for a new entry beside it.
    pub(crate) fn entry_options(
        &mut self,
        index: usize,
        level: u32,
    ) -> Result<EntryOptions, ZipError> {
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

/// What [`check_layout`] found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// Number of central directory entries.
    pub entries: usize,
    /// Where the central directory starts.
    pub cd_offset: u64,
}

const SIG_LOCAL: u32 = 0x0403_4b50;
const SIG_CENTRAL: u32 = 0x0201_4b50;
const SIG_EOCD: u32 = 0x0605_4b50;
const SIG_Z64_EOCD: u32 = 0x0606_4b50;
const SIG_Z64_LOCATOR: u32 = 0x0706_4b50;
const SIG_DESCRIPTOR: u32 = 0x0807_4b50;
/// Largest central directory read into memory (100,000 entries with long names fit).
const MAX_CENTRAL_DIRECTORY: u64 = 128 * 1024 * 1024;

fn le16(b: &[u8], i: usize) -> u64 {
    b.get(i..i + 2)
        .map_or(0, |s| u64::from(u16::from_le_bytes([s[0], s[1]])))
}

fn le32(b: &[u8], i: usize) -> u64 {
    b.get(i..i + 4).map_or(0, |s| {
        u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    })
}

fn le64(b: &[u8], i: usize) -> u64 {
    b.get(i..i + 8).map_or(0, |s| {
        u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
    })
}

fn layout_err(entry: Option<&[u8]>, reason: impl Into<String>) -> OpenError {
    OpenError::Layout {
        entry: entry.map(<[u8]>::to_vec),
        reason: reason.into(),
    }
}

fn read_at(file: &mut File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    file.seek(io::SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// One central directory record, sizes resolved through its zip64 extra field.
struct CentralRecord {
    name: Vec<u8>,
    flags: u64,
    method: u64,
    crc: u64,
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
    zip64_sizes: bool,
}

/// Values of a zip64 extended-information extra field (id 1), in the order the fields that are
/// 0xFFFFFFFF in the fixed header appear.
fn zip64_values(extra: &[u8], wanted: usize) -> Option<Vec<u64>> {
    let mut i = 0;
    while i + 4 <= extra.len() {
        let id = le16(extra, i);
        let len = le16(extra, i + 2) as usize;
        let body = extra.get(i + 4..i + 4 + len)?;
        if id == 1 {
            if body.len() < wanted * 8 {
                return None;
            }
            return Some((0..wanted).map(|k| le64(body, k * 8)).collect());
        }
        i += 4 + len;
    }
    None
}

/// Where the end record (zip64's, when there is one) says the central directory is.
struct EndRecord {
    /// Number of central directory records.
    count: u64,
    /// The central directory's size in bytes.
    cd_size: u64,
    /// Where the central directory starts.
    cd_offset: u64,
    /// Where the end records begin (the central directory must end there).
    cd_end_limit: u64,
}

/// Checks that the archive is the one view every zip tool sees, reading only headers (never the
/// compressed data): exactly one end record, at the very end (so no zip comment and no bytes
/// after it); the central directory ends where the (zip64) end records begin; every entry's local
/// header agrees with the central directory on name, flags, method, CRC and sizes (its data
/// descriptor too, when the flag says there is one); the first entry starts at offset 0 and each
/// entry ends exactly where the next begins, the last where the central directory begins (no
/// bytes before, between or hidden among the entries); no name twice.
pub(crate) fn check_layout(file: &mut File) -> Result<Layout, OpenError> {
    let end = read_end_record(file)?;
    check_central_bounds(&end)?;
    let cd = read_at(file, end.cd_offset, end.cd_size as usize)?;
    let records = read_central_records(&cd, end.count)?;
    check_entry_sequence(file, &records, end.cd_offset)?;
    Ok(Layout {
        entries: records.len(),
        cd_offset: end.cd_offset,
    })
}

/// Reads the end record, which must be the file's last 22 bytes (no comment, one disk), and the
/// zip64 end record its locator points to, when there is one.
fn read_end_record(file: &mut File) -> Result<EndRecord, OpenError> {
    let len = file.seek(io::SeekFrom::End(0))?;
    if len < 22 {
        return Err(layout_err(None, "too short for a zip (no end record)"));
    }
    let eocd_pos = len - 22;
    let eocd = read_at(file, eocd_pos, 22)?;
    if le32(&eocd, 0) != u64::from(SIG_EOCD) {
        let tail_len = len.min(65_557);
        let tail = read_at(file, len - tail_len, tail_len as usize)?;
        let found = tail.windows(4).any(|w| w == [0x50, 0x4b, 0x05, 0x06]);
        return Err(layout_err(
            None,
            if found {
                "bytes after the end record or a zip comment (neither is allowed)"
            } else {
                "no zip end record (not a zip, or truncated)"
            },
        ));
    }
    if le16(&eocd, 20) != 0 {
        return Err(layout_err(None, "a zip comment is not allowed"));
    }
    if le16(&eocd, 4) != 0 || le16(&eocd, 6) != 0 || le16(&eocd, 8) != le16(&eocd, 10) {
        return Err(layout_err(None, "multi-disk archives are not supported"));
    }
    let end = EndRecord {
        count: le16(&eocd, 10),
        cd_size: le32(&eocd, 12),
        cd_offset: le32(&eocd, 16),
        cd_end_limit: eocd_pos,
    };
    let locator = if eocd_pos >= 20 {
        Some(read_at(file, eocd_pos - 20, 20)?)
    } else {
        None
    };
    if let Some(loc) = locator.filter(|l| le32(l, 0) == u64::from(SIG_Z64_LOCATOR)) {
        return read_zip64_end_record(file, &loc, eocd_pos - 20);
    }
    if end.count == 0xFFFF || end.cd_size == 0xFFFF_FFFF || end.cd_offset == 0xFFFF_FFFF {
        return Err(layout_err(
            None,
            "a zip64 end record is announced but missing",
        ));
    }
    Ok(end)
}

/// Reads the zip64 end record the locator `loc` (at `loc_pos`) points to; it must end where the
/// locator begins.
fn read_zip64_end_record(
    file: &mut File,
    loc: &[u8],
    loc_pos: u64,
) -> Result<EndRecord, OpenError> {
    let z64_pos = le64(loc, 8);
    if le32(loc, 4) != 0 || le32(loc, 16) > 1 || z64_pos.saturating_add(56) > loc_pos {
        return Err(layout_err(None, "a malformed zip64 end record locator"));
    }
    let rec = read_at(file, z64_pos, 56)?;
    if le32(&rec, 0) != u64::from(SIG_Z64_EOCD) || z64_pos + 12 + le64(&rec, 4) != loc_pos {
        return Err(layout_err(
            None,
            "the zip64 end record is not where its locator says, or bytes follow it",
        ));
    }
    if le32(&rec, 16) != 0 || le32(&rec, 20) != 0 || le64(&rec, 24) != le64(&rec, 32) {
        return Err(layout_err(None, "multi-disk archives are not supported"));
    }
    Ok(EndRecord {
        count: le64(&rec, 32),
        cd_size: le64(&rec, 40),
        cd_offset: le64(&rec, 48),
        cd_end_limit: z64_pos,
    })
}

/// The central directory ends where the end records begin, fits in memory, and can hold the
/// number of records the end record claims.
fn check_central_bounds(end: &EndRecord) -> Result<(), OpenError> {
    let EndRecord {
        count,
        cd_size,
        cd_offset,
        cd_end_limit,
    } = *end;
    if cd_offset.checked_add(cd_size) != Some(cd_end_limit) {
        return Err(layout_err(
            None,
            format!(
                "the central directory ({cd_size} bytes at offset {cd_offset}) does not end where \
                 the end record begins (offset {cd_end_limit}): bytes were added or removed"
            ),
        ));
    }
    if cd_size > MAX_CENTRAL_DIRECTORY {
        return Err(layout_err(None, "the central directory is too large"));
    }
    // Each central record is at least 46 bytes: a count that cannot fit is a lie.
    if count.saturating_mul(46) > cd_size {
        return Err(layout_err(
            None,
            format!("the end record claims {count} entries, more than the central directory holds"),
        ));
    }
    Ok(())
}

/// Parses the `count` records of the central directory `cd`, which they must fill exactly; no
/// name twice.
fn read_central_records(cd: &[u8], count: u64) -> Result<Vec<CentralRecord>, OpenError> {
    let mut records = Vec::with_capacity(count as usize);
    let mut seen = HashSet::new();
    let mut i = 0usize;
    for _ in 0..count {
        let (record, next) = read_central_record(cd, i, &mut seen)?;
        records.push(record);
        i = next;
    }
    if i != cd.len() {
        return Err(layout_err(
            None,
            format!(
                "{} bytes of the central directory follow its {count} records",
                cd.len() - i
            ),
        ));
    }
    Ok(records)
}

/// The central record at offset `i` of `cd`, its sizes resolved through its zip64 extra field,
/// and the offset of the next record; its name must not be in `seen` (it is added).
fn read_central_record<'a>(
    cd: &'a [u8],
    i: usize,
    seen: &mut HashSet<&'a [u8]>,
) -> Result<(CentralRecord, usize), OpenError> {
    if i + 46 > cd.len() || le32(cd, i) != u64::from(SIG_CENTRAL) {
        return Err(layout_err(None, "a malformed central directory record"));
    }
    let n = le16(cd, i + 28) as usize;
    let m = le16(cd, i + 30) as usize;
    let k = le16(cd, i + 32) as usize;
    let (Some(name), Some(extra)) = (
        cd.get(i + 46..i + 46 + n),
        cd.get(i + 46 + n..i + 46 + n + m),
    ) else {
        return Err(layout_err(
            None,
            "a central directory record runs past its end",
        ));
    };
    if i + 46 + n + m + k > cd.len() {
        return Err(layout_err(
            Some(name),
            "its central record runs past the directory",
        ));
    }
    if !seen.insert(name) {
        return Err(layout_err(Some(name), "duplicate entry name"));
    }
    let mut uncompressed = le32(cd, i + 24);
    let mut compressed = le32(cd, i + 20);
    let mut local_offset = le32(cd, i + 42);
    let wanted = [uncompressed, compressed, local_offset]
        .iter()
        .filter(|v| **v == 0xFFFF_FFFF)
        .count()
        + usize::from(le16(cd, i + 34) == 0xFFFF);
    let zip64_sizes = uncompressed == 0xFFFF_FFFF || compressed == 0xFFFF_FFFF;
    if wanted > 0 {
        let Some(vals) = zip64_values(extra, wanted) else {
            return Err(layout_err(
                Some(name),
                "a zip64 size without its extra field",
            ));
        };
        let mut vals = vals.into_iter();
        for field in [&mut uncompressed, &mut compressed, &mut local_offset] {
            if *field == 0xFFFF_FFFF {
                *field = vals.next().unwrap_or(0);
            }
        }
    }
    if le16(cd, i + 34) != 0 {
        return Err(layout_err(
            Some(name),
            "multi-disk archives are not supported",
        ));
    }
    let record = CentralRecord {
        name: name.to_vec(),
        flags: le16(cd, i + 8),
        method: le16(cd, i + 10),
        crc: le32(cd, i + 16),
        compressed,
        uncompressed,
        local_offset,
        zip64_sizes,
    };
    Ok((record, i + 46 + n + m + k))
}

/// In file order, the first entry starts at offset 0, each starts where the previous ends (as
/// [`check_local`] measures it) and the last ends where the central directory begins.
fn check_entry_sequence(
    file: &mut File,
    records: &[CentralRecord],
    cd_offset: u64,
) -> Result<(), OpenError> {
    let mut order: Vec<&CentralRecord> = records.iter().collect();
    order.sort_by_key(|r| r.local_offset);
    let mut expected = 0u64;
    for r in order {
        if r.local_offset != expected {
            return Err(layout_err(
                Some(r.name.as_slice()),
                if expected == 0 {
                    format!(
                        "{} bytes before the first entry (its local header must start the file)",
                        r.local_offset
                    )
                } else {
                    "its local header does not start where the previous entry ends (bytes hidden \
                     between entries, or entries overlap)"
                        .to_string()
                },
            ));
        }
        expected = check_local(file, r, cd_offset)?;
    }
    if expected != cd_offset {
        return Err(layout_err(
            None,
            format!(
                "{} bytes between the last entry and the central directory",
                cd_offset.saturating_sub(expected)
            ),
        ));
    }
    Ok(())
}

/// CRC and sizes as a local header or data descriptor states them.
#[derive(PartialEq, Eq)]
struct Sums {
    crc: u64,
    compressed: u64,
    uncompressed: u64,
}

impl Sums {
    fn of(r: &CentralRecord) -> Sums {
        Sums {
            crc: r.crc,
            compressed: r.compressed,
            uncompressed: r.uncompressed,
        }
    }
}

/// Checks one entry's local header (and data descriptor) against its central record; returns
/// where the entry ends.
fn check_local(file: &mut File, r: &CentralRecord, cd_offset: u64) -> Result<u64, OpenError> {
    let name = Some(r.name.as_slice());
    let (data_start, descriptor, local) = read_local_header(file, r, cd_offset)?;
    let data_end = data_start
        .checked_add(r.compressed)
        .filter(|e| *e <= cd_offset)
        .ok_or_else(|| runs_past(r, "data"))?;
    if !descriptor {
        if local != Sums::of(r) {
            return Err(layout_err(
                name,
                "the local header's CRC or sizes differ from the central directory's",
            ));
        }
        return Ok(data_end);
    }
    // With a data descriptor the local header may leave CRC and sizes zero.
    let zero = local.crc == 0 && local.compressed == 0 && local.uncompressed == 0;
    if !zero && local != Sums::of(r) {
        return Err(layout_err(
            name,
            "the local header's CRC or sizes differ from the central directory's",
        ));
    }
    let (stated, end) = read_descriptor(file, r, data_end, cd_offset)?;
    if stated != Sums::of(r) {
        return Err(layout_err(
            name,
            "the data descriptor's CRC or sizes differ from the central directory's",
        ));
    }
    Ok(end)
}

fn runs_past(r: &CentralRecord, what: &str) -> OpenError {
    layout_err(
        Some(&r.name),
        format!("its {what} runs into the central directory"),
    )
}

/// Reads the local header of `r`: it must be where the central directory says, before it, and
/// agree with it on name, flags and method. Returns where the data starts, whether a data
/// descriptor follows the data, and the CRC and sizes the header states.
fn read_local_header(
    file: &mut File,
    r: &CentralRecord,
    cd_offset: u64,
) -> Result<(u64, bool, Sums), OpenError> {
    let name = Some(r.name.as_slice());
    if r.local_offset.saturating_add(30) > cd_offset {
        return Err(runs_past(r, "local header"));
    }
    let h = read_at(file, r.local_offset, 30)?;
    if le32(&h, 0) != u64::from(SIG_LOCAL) {
        return Err(layout_err(
            name,
            "no local header where the central directory says",
        ));
    }
    let n = le16(&h, 26);
    let m = le16(&h, 28);
    let data_start = r.local_offset + 30 + n + m;
    if data_start > cd_offset {
        return Err(runs_past(r, "local header"));
    }
    let rest = read_at(file, r.local_offset + 30, (n + m) as usize)?;
    let (local_name, extra) = rest.split_at(n as usize);
    if local_name != r.name.as_slice() {
        return Err(layout_err(
            name,
            format!(
                "the local header names it {:?}, unlike the central directory",
                String::from_utf8_lossy(local_name)
            ),
        ));
    }
    let flags = le16(&h, 6);
    if flags != r.flags || le16(&h, 8) != r.method {
        return Err(layout_err(
            name,
            "the local header's flags or compression method differ from the central directory's",
        ));
    }
    let mut sums = Sums {
        crc: le32(&h, 14),
        compressed: le32(&h, 18),
        uncompressed: le32(&h, 22),
    };
    if sums.compressed == 0xFFFF_FFFF || sums.uncompressed == 0xFFFF_FFFF {
        let Some(v) = zip64_values(extra, 2) else {
            return Err(layout_err(
                name,
                "a zip64 local size without its extra field",
            ));
        };
        sums.uncompressed = v[0];
        sums.compressed = v[1];
    }
    Ok((data_start, flags & 0x08 != 0, sums))
}

/// Reads the data descriptor after the data of `r` (ending at `data_end`), with or without its
/// signature, 64-bit sizes when the central record has them. Returns what it states and where
/// it ends.
fn read_descriptor(
    file: &mut File,
    r: &CentralRecord,
    data_end: u64,
    cd_offset: u64,
) -> Result<(Sums, u64), OpenError> {
    let size_len = if r.zip64_sizes { 8 } else { 4 };
    let with_sig = data_end + 4 <= cd_offset
        && le32(&read_at(file, data_end, 4)?, 0) == u64::from(SIG_DESCRIPTOR);
    let at = if with_sig { data_end + 4 } else { data_end };
    let len = 4 + 2 * size_len;
    if at + len as u64 > cd_offset {
        return Err(runs_past(r, "data descriptor"));
    }
    let d = read_at(file, at, len)?;
    let (compressed, uncompressed) = if size_len == 8 {
        (le64(&d, 4), le64(&d, 12))
    } else {
        (le32(&d, 4), le32(&d, 8))
    };
    let sums = Sums {
        crc: le32(&d, 0),
        compressed,
        uncompressed,
    };
    Ok((sums, at + len as u64))
}

/// A zip of `(name, bytes)` entries with default options, for tests that need arbitrary
/// archives.
#[cfg(test)]
pub(crate) fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = ZipWriter::new(io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, SimpleFileOptions::default())
            .expect("start entry");
        w.write_all(data).expect("write entry");
    }
    w.finish().expect("finish zip").into_inner()
}
