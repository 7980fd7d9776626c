//! State the writer and every reader share: the segment list and the index.
//!
//! The list is an `Arc<Vec<..>>` swapped whole under a short lock when the
//! writer rolls or retention deletes, so a reader takes a snapshot and reads
//! without holding anything; the index is behind a read-write lock held only
//! for in-memory lookups and for filing a written batch.

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::index::SourceIndex;
use crate::segment::Segment;

pub(crate) type SegmentList = Arc<Vec<Arc<Segment>>>;

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) max_record: usize,
    segments: RwLock<SegmentList>,
    pub(crate) index: RwLock<SourceIndex>,
}

impl Shared {
    pub(crate) fn new(
        dir: PathBuf,
        max_record: usize,
        segments: Vec<Arc<Segment>>,
        index: SourceIndex,
    ) -> Self {
        Shared {
            dir,
            max_record,
            segments: RwLock::new(Arc::new(segments)),
            index: RwLock::new(index),
        }
    }

    pub(crate) fn snapshot(&self) -> SegmentList {
        self.segments.read().clone()
    }

    /// Replaces the list (writer only).
    pub(crate) fn set_segments(&self, segments: Vec<Arc<Segment>>) {
        *self.segments.write() = Arc::new(segments);
    }
}
