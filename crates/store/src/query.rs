//! Query and report types shared by store backends.

use envelope::v2::EnvelopeType;

/// A Log Cache read: `start_time` inclusive, `end_time` exclusive (both
/// Unix ns), optional envelope types, `limit`, direction.
#[derive(Clone, Debug)]
pub struct ReadQuery {
    pub start_time: i64,
    pub end_time: i64,
    pub envelope_types: Vec<EnvelopeType>,
    pub limit: usize,
    pub descending: bool,
}

impl Default for ReadQuery {
    fn default() -> Self {
        ReadQuery {
            start_time: 0,
            end_time: i64::MAX,
            envelope_types: Vec::new(),
            limit: 100,
            descending: false,
        }
    }
}

/// Log Cache's `/api/v1/meta` entry for one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceMeta {
    pub source_id: String,
    pub count: u64,
    /// Entries removed by the age, count or memory limits.
    pub expired: u64,
    pub oldest_timestamp: i64,
    pub newest_timestamp: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub entries: u64,
    pub bytes: u64,
    pub sources: u64,
    /// Entries removed because of age.
    pub expired: u64,
    /// Entries removed because of the per-source count or the memory budget.
    pub evicted: u64,
}
