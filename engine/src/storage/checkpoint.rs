//! The checkpoint file (ESE's `.chk`): where log replay would start, and which databases were
//! attached under which [`FileId`] at that point, so recovery can map the `PageImages`
//! records after the checkpoint to files without reading the log from its start.
//!
//! The file holds two fixed-size slots written alternately, each with its own sequence
//! number and CRC-32; the valid slot with the higher sequence wins. A torn write therefore
//! damages only the slot being written and the previous checkpoint survives.
//!
//! The one write with no previous checkpoint behind it is the first (sequence 1, slot 1):
//! if it is lost or torn, slot 0 is still blank (never written) and slot 1 is blank too or
//! fails its CRC. That file reads as "no checkpoint yet", which is true (the write never
//! became durable), and
//! recovery replays from the start of the log, which is never truncated. Two damaged slots
//! cannot come from torn writes (each write is synced before the next one starts), so that
//! file is `DatabaseCorrupted`.
//!
//! Besides the redo point (the checkpoint LSN) a slot records the undo point: the LSN of the
//! first Undo record of the oldest transaction still open when the checkpoint was taken.
//! Transactions span checkpoints, so the undo information recovery needs for a transaction
//! that never committed can lie before the redo point; recovery scans from the older of the
//! two (see `recovery.rs` for why the checkpoint itself is not held back instead).
//!
//! Slot layout (LE): crc32 of bytes 4..slot end u32, magic u64 "JETSIMCK", version u32,
//! sequence u64, log signature u64, checkpoint LSN u64, undo LSN u64, attached count u16,
//! then per database
//! `file id u32, path len u16, path`, zero padding.

use super::page::crc32;
use super::{FileId, Lsn, MAX_ATTACHED_DATABASES, MAX_DATABASE_PATH_BYTES};
use crate::env::io::{Io, IoFile};
use crate::error::{JetError, JetResult};
use std::sync::Arc;

/// Bytes of one slot; the file holds two.
pub const CHECKPOINT_SLOT_BYTES: usize = 4096;
const CHECKPOINT_MAGIC: u64 = u64::from_le_bytes(*b"JETSIMCK");
const CHECKPOINT_FORMAT_VERSION: u32 = 2;
const SLOT_FIXED_BYTES: usize = 4 + 8 + 4 + 8 + 8 + 8 + 8 + 2;

// Every allowed attachment list fits in one slot.
const _: () = assert!(
    SLOT_FIXED_BYTES + MAX_ATTACHED_DATABASES * (6 + MAX_DATABASE_PATH_BYTES)
        <= CHECKPOINT_SLOT_BYTES
);

/// One persisted checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointState {
    pub sequence: u64,
    /// The log the LSNs refer to (a checkpoint of another log, e.g. one an operator deleted,
    /// is ignored).
    pub log_signature: u64,
    /// Redo would start here: no page change before it is missing from the database files.
    pub checkpoint_lsn: Lsn,
    /// Every Undo record of a transaction open at the checkpoint is at or after this LSN.
    pub undo_lsn: Lsn,
    /// Databases attached when the checkpoint was taken, by FileId.
    pub attached: Vec<(FileId, String)>,
}

fn encode_slot(state: &CheckpointState) -> Vec<u8> {
    assert!(state.attached.len() <= MAX_ATTACHED_DATABASES);
    let mut slot = vec![0u8; 4];
    slot.extend_from_slice(&CHECKPOINT_MAGIC.to_le_bytes());
    slot.extend_from_slice(&CHECKPOINT_FORMAT_VERSION.to_le_bytes());
    slot.extend_from_slice(&state.sequence.to_le_bytes());
    slot.extend_from_slice(&state.log_signature.to_le_bytes());
    slot.extend_from_slice(&state.checkpoint_lsn.to_le_bytes());
    slot.extend_from_slice(&state.undo_lsn.to_le_bytes());
    slot.extend_from_slice(&(state.attached.len() as u16).to_le_bytes());
    for (file, path) in &state.attached {
        assert!(path.len() <= MAX_DATABASE_PATH_BYTES);
        slot.extend_from_slice(&file.0.to_le_bytes());
        slot.extend_from_slice(&(path.len() as u16).to_le_bytes());
        slot.extend_from_slice(path.as_bytes());
    }
    debug_assert!(slot.len() <= CHECKPOINT_SLOT_BYTES);
    slot.resize(CHECKPOINT_SLOT_BYTES, 0);
    let checksum = crc32(&slot[4..]);
    slot[..4].copy_from_slice(&checksum.to_le_bytes());
    slot
}

fn decode_slot(slot: &[u8]) -> Option<CheckpointState> {
    if slot.len() != CHECKPOINT_SLOT_BYTES
        || u32::from_le_bytes(slot[..4].try_into().ok()?) != crc32(&slot[4..])
    {
        return None;
    }
    let mut offset = 4;
    let mut take = |len: usize| -> Option<&[u8]> {
        let bytes = slot.get(offset..offset + len)?;
        offset += len;
        Some(bytes)
    };
    if u64::from_le_bytes(take(8)?.try_into().ok()?) != CHECKPOINT_MAGIC
        || u32::from_le_bytes(take(4)?.try_into().ok()?) != CHECKPOINT_FORMAT_VERSION
    {
        return None;
    }
    let sequence = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let log_signature = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let checkpoint_lsn = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let undo_lsn = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let count = usize::from(u16::from_le_bytes(take(2)?.try_into().ok()?));
    if count > MAX_ATTACHED_DATABASES {
        return None;
    }
    let mut attached = Vec::with_capacity(count);
    for _ in 0..count {
        let file = FileId(u32::from_le_bytes(take(4)?.try_into().ok()?));
        let len = usize::from(u16::from_le_bytes(take(2)?.try_into().ok()?));
        let path = String::from_utf8(take(len)?.to_vec()).ok()?;
        attached.push((file, path));
    }
    Some(CheckpointState {
        sequence,
        log_signature,
        checkpoint_lsn,
        undo_lsn,
        attached,
    })
}

/// What one slot of the file holds.
enum Slot {
    /// Never written: past the end of the file, or all zero bytes.
    Blank,
    /// Written, but its CRC, magic or layout is wrong (a torn or damaged write).
    Damaged,
    Valid(CheckpointState),
}

fn classify_slot(bytes: &[u8]) -> Slot {
    if bytes.iter().all(|&b| b == 0) {
        return Slot::Blank;
    }
    decode_slot(bytes).map_or(Slot::Damaged, Slot::Valid)
}

/// The newest valid checkpoint in a checkpoint file's bytes, and how many of its two slots
/// are damaged. A slot past the end of the bytes reads as zeros: blank.
fn read_slots(bytes: &[u8]) -> (Option<CheckpointState>, u32) {
    let mut bytes = bytes[..bytes.len().min(2 * CHECKPOINT_SLOT_BYTES)].to_vec();
    bytes.resize(2 * CHECKPOINT_SLOT_BYTES, 0);
    let slots: Vec<Slot> = bytes
        .chunks(CHECKPOINT_SLOT_BYTES)
        .map(classify_slot)
        .collect();
    let damaged = slots
        .iter()
        .filter(|slot| matches!(slot, Slot::Damaged))
        .count() as u32;
    let newest = slots
        .into_iter()
        .filter_map(|slot| match slot {
            Slot::Valid(state) => Some(state),
            Slot::Blank | Slot::Damaged => None,
        })
        .max_by_key(|state| state.sequence);
    (newest, damaged)
}

/// The checkpoint recovery would start from, read from a checkpoint file's bytes as a crash
/// left them (`None`: no valid checkpoint). For observers of the disk, such as a test
/// harness deciding where a crash matters.
pub fn newest_checkpoint(file_bytes: &[u8]) -> Option<CheckpointState> {
    read_slots(file_bytes).0
}

/// The open checkpoint file and the newest checkpoint in it.
pub struct CheckpointFile {
    file: Arc<dyn IoFile>,
    last: Option<CheckpointState>,
    /// The sequence of a checkpoint prepared ([`CheckpointFile::prepare`]) whose write has
    /// not been finished: the next one takes the sequence after it, so it goes to the other
    /// slot and never lands under an older one in the same slot.
    pending_sequence: Option<u64>,
    /// Slots that failed their check when the file was opened (0, or 1: a torn write).
    damaged_slots_at_open: u32,
}

impl CheckpointFile {
    /// Opens `path`, or creates it empty (no checkpoint yet). An existing non-empty file
    /// with no valid slot is `DatabaseCorrupted`.
    pub fn open(io: &dyn Io, path: &str) -> JetResult<CheckpointFile> {
        if !io.exists(path) {
            let file = io.create(path).map_err(|e| JetError::from_io(&e))?;
            return Ok(CheckpointFile {
                file: Arc::from(file),
                last: None,
                pending_sequence: None,
                damaged_slots_at_open: 0,
            });
        }
        let file = io.open(path).map_err(|e| JetError::from_io(&e))?;
        let len = file.len().map_err(|e| JetError::from_io(&e))?;
        let len = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .min(2 * CHECKPOINT_SLOT_BYTES);
        let mut bytes = vec![0u8; len];
        file.read_at(0, &mut bytes)
            .map_err(|e| JetError::from_io(&e))?;
        let (last, damaged_slots_at_open) = read_slots(&bytes);
        if damaged_slots_at_open == 2 {
            return Err(JetError::DatabaseCorrupted);
        }
        Ok(CheckpointFile {
            file: Arc::from(file),
            last,
            pending_sequence: None,
            damaged_slots_at_open,
        })
    }

    pub fn last(&self) -> Option<&CheckpointState> {
        self.last.as_ref()
    }

    /// Slots that failed their check at open: a checkpoint write that tore at a crash.
    pub fn damaged_slots_at_open(&self) -> u32 {
        self.damaged_slots_at_open
    }

    /// Persists a new checkpoint into the older slot and syncs it.
    pub fn write(
        &mut self,
        log_signature: u64,
        checkpoint_lsn: Lsn,
        undo_lsn: Lsn,
        attached: Vec<(FileId, String)>,
    ) -> JetResult<()> {
        let write = self.prepare(log_signature, checkpoint_lsn, undo_lsn, attached);
        let written = write.write_and_sync();
        self.finish(write, written)
    }

    /// A checkpoint's write, to be made with no lock held ([`CheckpointWrite::write_and_sync`])
    /// and then ended with [`CheckpointFile::finish`]. Its sequence follows every checkpoint
    /// written or prepared, so it goes to the slot that does not hold the newest one.
    pub fn prepare(
        &mut self,
        log_signature: u64,
        checkpoint_lsn: Lsn,
        undo_lsn: Lsn,
        attached: Vec<(FileId, String)>,
    ) -> CheckpointWrite {
        // No monotonicity assert on the LSN: a log deleted by an operator restarts LSNs.
        let newest_sequence = self
            .last
            .as_ref()
            .map(|state| state.sequence)
            .max(self.pending_sequence)
            .unwrap_or(0);
        let state = CheckpointState {
            sequence: newest_sequence + 1,
            log_signature,
            checkpoint_lsn,
            undo_lsn,
            attached,
        };
        self.pending_sequence = Some(state.sequence);
        CheckpointWrite {
            file: Arc::clone(&self.file),
            slot_offset_bytes: (state.sequence % 2) * CHECKPOINT_SLOT_BYTES as u64,
            bytes: encode_slot(&state),
            state,
        }
    }

    /// Ends a prepared write whose I/O gave `written`: on success the checkpoint is the
    /// newest persisted one, unless a later one already is.
    pub fn finish(
        &mut self,
        write: CheckpointWrite,
        written: std::io::Result<()>,
    ) -> JetResult<()> {
        if self.pending_sequence == Some(write.state.sequence) {
            self.pending_sequence = None;
        }
        written.map_err(|e| JetError::from_io(&e))?;
        if self
            .last
            .as_ref()
            .is_none_or(|last| last.sequence < write.state.sequence)
        {
            self.last = Some(write.state);
        }
        Ok(())
    }
}

/// A checkpoint slot's bytes on their way to the file ([`CheckpointFile::prepare`]).
pub struct CheckpointWrite {
    file: Arc<dyn IoFile>,
    slot_offset_bytes: u64,
    bytes: Vec<u8>,
    state: CheckpointState,
}

impl CheckpointWrite {
    /// Writes the slot and syncs the file. Called with no lock held.
    pub fn write_and_sync(&self) -> std::io::Result<()> {
        self.file.write_at(self.slot_offset_bytes, &self.bytes)?;
        self.file.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::io::MemIo;

    #[test]
    fn a_prepared_write_landing_after_a_newer_one_leaves_the_newer_one_newest() {
        // Goal: the background flush prepares a checkpoint and writes it with no lock held;
        // a stop prepares and writes a newer one meanwhile. Whatever order they land and
        // finish in, the newer one is the newest in memory and on the disk.
        let io = MemIo::new();
        let mut chk = CheckpointFile::open(&io, "jet.chk").expect("create");
        chk.write(7, 100, 100, Vec::new()).expect("write");
        let background = chk.prepare(7, 150, 150, Vec::new());
        let stop = chk.prepare(7, 200, 200, Vec::new());
        assert_ne!(
            background.slot_offset_bytes, stop.slot_offset_bytes,
            "consecutive checkpoints go to different slots"
        );
        let stop_written = stop.write_and_sync();
        chk.finish(stop, stop_written).expect("stop's checkpoint");
        let background_written = background.write_and_sync();
        chk.finish(background, background_written)
            .expect("background checkpoint");
        assert_eq!(chk.last().map(|last| last.checkpoint_lsn), Some(200));
        let reopened = CheckpointFile::open(&io, "jet.chk").expect("reopen");
        assert_eq!(reopened.last().map(|last| last.checkpoint_lsn), Some(200));
        // The next checkpoint follows both.
        chk.write(7, 250, 250, Vec::new()).expect("write");
        assert_eq!(chk.last().map(|last| last.sequence), Some(4));
    }

    #[test]
    fn newest_valid_slot_wins_and_a_torn_slot_falls_back() {
        // Goal: two alternating slots; damaging the newest leaves the previous checkpoint.
        let io = MemIo::new();
        let mut chk = CheckpointFile::open(&io, "jet.chk").expect("create");
        assert!(chk.last().is_none());
        chk.write(7, 100, 90, vec![(FileId(1), "a.edb".into())])
            .expect("write");
        chk.write(
            7,
            200,
            200,
            vec![(FileId(1), "a.edb".into()), (FileId(2), "b.edb".into())],
        )
        .expect("write");
        let reopened = CheckpointFile::open(&io, "jet.chk").expect("reopen");
        let last = reopened.last().expect("checkpoint");
        assert_eq!((last.sequence, last.checkpoint_lsn), (2, 200));
        assert_eq!(last.attached.len(), 2);

        // Sequence 2 lives in slot 0; tear it.
        let file = io.open("jet.chk").expect("open");
        file.write_at(10, &[0xFF; 8]).expect("tear");
        let reopened = CheckpointFile::open(&io, "jet.chk").expect("reopen");
        assert_eq!(reopened.last().map(|s| s.checkpoint_lsn), Some(100));

        file.write_at(CHECKPOINT_SLOT_BYTES as u64 + 10, &[0xFF; 8])
            .expect("tear");
        assert!(matches!(
            CheckpointFile::open(&io, "jet.chk"),
            Err(JetError::DatabaseCorrupted)
        ));
    }

    #[test]
    fn a_torn_first_checkpoint_reads_as_no_checkpoint() {
        // Goal: the first write (slot 1) not surviving the crash while slot 0 was never
        // written is "no checkpoint yet", not corruption (found by `jetsim replay 9467
        // --faults`: the tear kept a padding sector and lost the one with the header).
        let io = MemIo::new();
        let mut chk = CheckpointFile::open(&io, "jet.chk").expect("create");
        chk.write(7, 100, 90, Vec::new()).expect("write");
        let file = io.open("jet.chk").expect("open");
        file.write_at(CHECKPOINT_SLOT_BYTES as u64, &[0; 512])
            .expect("lose the first sector");
        let reopened = CheckpointFile::open(&io, "jet.chk").expect("reopen");
        assert!(reopened.last().is_none());
        assert_eq!(reopened.damaged_slots_at_open(), 0);

        // Damage rather than loss (a header sector half old, half new): still no checkpoint,
        // and the damaged slot is counted for the recovery report.
        file.write_at(CHECKPOINT_SLOT_BYTES as u64 + 20, &[0xAB; 8])
            .expect("damage");
        let reopened = CheckpointFile::open(&io, "jet.chk").expect("reopen");
        assert!(reopened.last().is_none());
        assert_eq!(reopened.damaged_slots_at_open(), 1);

        // The same damage once slot 0 holds a checkpoint falls back to it instead.
        let mut chk = CheckpointFile::open(&io, "other.chk").expect("create");
        chk.write(7, 100, 90, Vec::new()).expect("write");
        chk.write(7, 200, 200, Vec::new()).expect("write");
        chk.write(7, 300, 300, Vec::new()).expect("write");
        let file = io.open("other.chk").expect("open");
        file.write_at(CHECKPOINT_SLOT_BYTES as u64 + 20, &[0xAB; 8])
            .expect("damage");
        let reopened = CheckpointFile::open(&io, "other.chk").expect("reopen");
        assert_eq!(reopened.last().map(|s| s.checkpoint_lsn), Some(200));
        assert_eq!(reopened.damaged_slots_at_open(), 1);
    }
}
