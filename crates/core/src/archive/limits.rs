//! Resource limits for reading untrusted archives (hostile input is expected: every limit
//! is measured, never taken from what the archive declares).

/// Limits applied while reading an archive. Sizes are measured while decompressing, never taken
/// from the sizes the archive declares. The writer checks what it writes against the same table
/// (strictly: see [`Limits::manifest_bound_written`]), so every archive it writes reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most entries an archive may hold whatever its flows (bounds the central directory read
    /// before anything else). Within it, an archive holds at most
    /// [`entries_per_flow`](Limits::entries_per_flow) entries per flow plus
    /// [`extra_entries`](Limits::extra_entries).
    pub max_entries: usize,
    /// Entries allowed per flow (its `export.json`, `flow.json`, room to spare).
    pub entries_per_flow: usize,
    /// Entries allowed beside the flows' (the manifest, signatures).
    pub extra_entries: usize,
    /// The manifest's size bound before any flow: the bound is this plus
    /// [`manifest_bytes_per_flow`](Limits::manifest_bytes_per_flow) per flow entry.
    pub manifest_bytes: u64,
    /// What each flow entry adds to the manifest's size bound.
    pub manifest_bytes_per_flow: u64,
    /// What each flow entry adds to the manifest's bound on JSON values (over the
    /// per-document bound's): a flow record and its `files` entries take about 20.
    pub manifest_values_per_flow: u64,
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
            max_entries: 4 * 100_000 + 16,
            entries_per_flow: 4,
            extra_entries: 16,
            manifest_bytes: 1024 * 1024,
            manifest_bytes_per_flow: 1024,
            manifest_values_per_flow: 64,
            max_entry_size: 64 * 1024 * 1024,
            max_total_size: 16 * 1024 * 1024 * 1024,
            max_ratio: 1000,
            document: crate::document::DocumentBound::default(),
        }
    }
}

impl Limits {
    /// Most entries an archive of `flows` flows may hold: `entries_per_flow × flows +
    /// extra_entries`, never more than `max_entries`.
    pub fn entries_allowed(&self, flows: usize) -> usize {
        self.entries_per_flow
            .saturating_mul(flows)
            .saturating_add(self.extra_entries)
            .min(self.max_entries)
    }

    /// What a manifest listing `flows` flows may cost when written: `manifest_bytes +
    /// manifest_bytes_per_flow × flows` bytes, the per-document bound's JSON values plus
    /// `manifest_values_per_flow × flows`, the document nesting bound.
    pub fn manifest_bound_written(&self, flows: usize) -> crate::document::DocumentBound {
        let bytes = self
            .manifest_bytes
            .saturating_add(self.manifest_bytes_per_flow.saturating_mul(flows as u64));
        let values = self
            .document
            .max_values
            .saturating_add(self.manifest_values_per_flow.saturating_mul(flows as u64));
        crate::document::DocumentBound {
            max_bytes: bytes,
            max_values: values,
            max_depth: self.document.max_depth,
        }
    }

    /// What a manifest of an archive holding `flows` flow entries may cost when read: the
    /// written bound, or the per-document bound where that is larger (archives written before
    /// the manifest had its own bound keep reading).
    pub fn manifest_bound(&self, flows: usize) -> crate::document::DocumentBound {
        let written = self.manifest_bound_written(flows);
        crate::document::DocumentBound {
            max_bytes: written.max_bytes.max(self.document.max_bytes),
            max_values: written.max_values.max(self.document.max_values),
            max_depth: self.document.max_depth,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_grow_with_the_flows() {
        let l = Limits::default();
        assert_eq!(l.entries_allowed(0), 16);
        assert_eq!(l.entries_allowed(100_000), 400_016);
        assert_eq!(l.entries_allowed(1_000_000), 400_016);
        assert_eq!(l.manifest_bound_written(0).max_bytes, 1 << 20);
        assert_eq!(
            l.manifest_bound_written(100_000).max_bytes,
            (1 << 20) + 100_000 * 1024
        );
        // Reading keeps the per-document bound as a floor.
        assert_eq!(l.manifest_bound(10).max_bytes, 16 << 20);
        assert_eq!(l.manifest_bound(10).max_values, 1_000_640);
        assert_eq!(l.manifest_bound(100_000).max_values, 7_400_000);
        assert_eq!(
            l.manifest_bound(100_000).max_bytes,
            (1 << 20) + 100_000 * 1024
        );
    }
}
