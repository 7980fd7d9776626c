//! Fsync without holding the writer: a [`SyncPlan`] names the segment
//! files that hold unsynced records, is run by whoever wants durability
//! (the fsync timer) with the writer free, and is then reported back.
//!
//! An fsync waits for the disk to write everything dirty in the file: up
//! to `fsync_ms` of full-speed ingest (100 MB and more), hundreds of ms on
//! an ordinary disk. Held under the writer's lock, as a first version did,
//! that stall stopped every append: in the ingest benchmark the log sat
//! idle a fifth of the time. Rolling a segment no longer fsyncs either: the
//! sealed segment joins the list for the next plan. After a machine crash a
//! sealed segment whose tail had not been fsynced yet reads as damaged from
//! there (`recover.rs` skips the rest of it and reports it); that tail is
//! within the last fsync period, the loss the timer allows anyway.
//!
//! Plans may overlap (the timer's and a retention pass's): the list of
//! sealed segments is copied into each plan, not taken, and a segment
//! leaves it only once a plan that held it succeeded, so no caller sees
//! `synced` pass a segment another caller is still fsyncing and then fails.

use std::sync::Arc;

use crate::error::LogError;
use crate::segment::Segment;
use crate::writer::LogWriter;

/// Segment files to fsync, oldest first, and the position every record
/// below is durable at once they are.
#[derive(Debug)]
pub struct SyncPlan {
    segments: Vec<Arc<Segment>>,
    upto: u64,
}

impl SyncPlan {
    /// Fsyncs the files (`fdatasync`, which also makes a changed size
    /// durable). Needs no lock.
    pub fn run(&self) -> Result<(), LogError> {
        for seg in &self.segments {
            seg.file
                .sync_data()
                .map_err(LogError::io("fsync", &seg.path))?;
        }
        Ok(())
    }
}

impl LogWriter {
    /// Writes what is buffered and says which files must be fsynced for
    /// every record appended so far to be durable.
    pub fn plan_sync(&mut self) -> Result<SyncPlan, LogError> {
        self.flush()?;
        let mut segments = self.unsynced_sealed.clone();
        if self.synced < self.next {
            segments.push(self.active.clone());
        }
        Ok(SyncPlan {
            segments,
            upto: self.next,
        })
    }

    /// Takes in a plan that ran successfully: its sealed segments leave the
    /// unsynced list and the durable watermark moves to where it reached.
    pub fn synced_by(&mut self, plan: &SyncPlan) {
        self.unsynced_sealed
            .retain(|s| !plan.segments.iter().any(|p| Arc::ptr_eq(p, s)));
        self.synced = self.synced.max(plan.upto);
    }

    /// Flushes and fsyncs everything appended so far, holding the writer
    /// throughout (tests, `close`). [`plan_sync`](Self::plan_sync) and
    /// [`SyncPlan::run`] do the same without blocking appends.
    pub fn sync(&mut self) -> Result<(), LogError> {
        let plan = self.plan_sync()?;
        plan.run()?;
        self.synced_by(&plan);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::LogConfig;
    use crate::record::NewRecord;
    use crate::writer::{open, LogWriter};

    fn records(n: usize) -> Vec<NewRecord<'static>> {
        vec![
            NewRecord {
                timestamp: 1,
                key: "apptail.x",
                source_id: "x",
                envelope: b"payload",
            };
            n
        ]
    }

    /// A writer whose small segments rolled (unsynced) while appending.
    fn rolled_writer(dir: &tempfile::TempDir) -> LogWriter {
        let mut config = LogConfig::new(dir.path());
        config.segment_bytes = 200;
        let (mut w, _) = open(config).unwrap();
        for _ in 0..3 {
            w.append(&records(2)).unwrap();
        }
        w
    }

    #[test]
    fn a_sealed_segment_waits_for_the_next_plan_and_overlapping_plans_agree() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = rolled_writer(&dir);
        let sealed = w.unsynced_sealed.len();
        assert!(sealed >= 1, "rolled without an fsync: {sealed}");
        assert!(w.synced_position() < w.next_position());

        // Two plans overlap: the second succeeds first.
        let first = w.plan_sync().unwrap();
        w.append(&records(1)).unwrap();
        let second = w.plan_sync().unwrap();
        assert_eq!(
            first.segments.len(),
            sealed + 1,
            "sealed ones and the active one"
        );
        second.run().unwrap();
        w.synced_by(&second);
        assert_eq!(w.synced_position(), w.next_position());
        assert!(w.unsynced_sealed.is_empty());
        // The first, finishing late, never moves the watermark back.
        first.run().unwrap();
        w.synced_by(&first);
        assert_eq!(w.synced_position(), w.next_position());
        // Nothing new: a plan has nothing to fsync.
        assert!(w.plan_sync().unwrap().segments.is_empty());
    }

    #[test]
    fn a_failed_plan_leaves_its_segments_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = rolled_writer(&dir);
        let before = w.unsynced_sealed.len();
        let _failed = w.plan_sync().unwrap(); // never run or reported
        assert_eq!(w.unsynced_sealed.len(), before);
        w.sync().unwrap();
        assert!(w.unsynced_sealed.is_empty());
        assert_eq!(w.synced_position(), w.next_position());
    }
}
