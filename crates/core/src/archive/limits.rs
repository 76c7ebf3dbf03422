//! Resource limits for reading untrusted archives (hostile input is expected: every limit
//! is measured, never taken from what the archive declares).

/// Limits applied while reading an archive. Sizes are measured while decompressing, never taken
/// from the sizes the archive declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most entries an archive may hold.
    pub max_entries: usize,
    /// Largest uncompressed entry, in bytes.
    pub max_entry_size: u64,
    /// Largest total of all uncompressed entries, in bytes.
    pub max_total_size: u64,
    /// Largest ratio of uncompressed to compressed bytes of one entry.
    pub max_ratio: u64,
    /// What one document (a flow document or the manifest) may cost to parse: size, values,
    /// nesting; checked before any JSON value is built.
    pub document: crate::document::DocumentBound,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 100_000,
            max_entry_size: 64 * 1024 * 1024,
            max_total_size: 1024 * 1024 * 1024,
            max_ratio: 1000,
            document: crate::document::DocumentBound::default(),
        }
    }
}
