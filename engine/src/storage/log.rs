//! The write-ahead log: the record codec and the append-only log file.
//!
//! File layout: a 24-byte header (magic "JETSIMLG", format version u32, reserved u32, log
//! signature u64), then records back to back. The signature names this log among all logs
//! (ESE's log signature): database headers record the signature of the log they belong to,
//! so recovery never replays one log's page images into a database another log now owns. A record's LSN is the byte offset of its start, so the first LSN is
//! [`LOG_HEADER_BYTES`] and 0 never names a record.
//!
//! Record framing: `payload_len u32 LE, crc32(payload_len bytes ++ payload) u32 LE, payload`.
//! The checksum covers the length so a torn or zero-filled tail is detected: decoding stops
//! at the first record whose length runs past the end, whose checksum fails, or whose payload
//! does not parse, and everything before it is the valid prefix. Recovery (a later layer)
//! replays that prefix; [`Log::open`] truncates the file to it so new records never sit
//! behind garbage.

use super::page::crc32;
use super::{FileId, Lsn, PageNumber, PAGE_SIZE_BYTES};
use std::sync::Arc;

use crate::env::io::{Io, IoFile};
use crate::error::{JetError, JetResult};
use crate::runtime::sync::Unlatched;

/// Bytes of the log file header; also the first LSN.
pub const LOG_HEADER_BYTES: u64 = 24;
const LOG_MAGIC: u64 = u64::from_le_bytes(*b"JETSIMLG");
// 3: one `PageImages` record per tree operation (was one `PageImage` record per page).
const LOG_FORMAT_VERSION: u32 = 3;
const RECORD_FRAME_BYTES: usize = 8;
/// Largest payload a record may have: the page images of one operation (deleting a table of
/// about 8,000 pages) plus slack for their fields. Anything longer in a file is garbage,
/// which keeps a corrupt length from allocating gigabytes.
pub const MAX_LOG_RECORD_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRecord {
    /// `file` now names the database at `path` (written before any page of it is logged).
    AttachDatabase {
        file: FileId,
        path: String,
    },
    /// `file` is detached; its pages were flushed first.
    DetachDatabase {
        file: FileId,
    },
    /// Full after-images of every page one tree operation changed (a split touches the leaf,
    /// its new sibling, the parent and the header): physical redo. One record, one checksum,
    /// so the operation is in the log whole or not at all, and recovery never rebuilds half
    /// a split (ESE's macro log records serve the same purpose). Each image carries the
    /// record's own LSN. Pages are distinct and ascending.
    PageImages {
        file: FileId,
        images: Vec<(PageNumber, Vec<u8>)>,
    },
    Begin {
        txn: u64,
    },
    /// Logical undo information for one record change, written by the layer above first.
    Undo {
        txn: u64,
        file: FileId,
        table_root: PageNumber,
        key: Vec<u8>,
        before: Option<Vec<u8>>,
    },
    Commit {
        txn: u64,
        commit_ts: u64,
    },
    /// `level` of `txn` was rolled back: its newest `undone` Undo records were compensated
    /// (their before-images are back, logged as page images before this record). Level 1
    /// ends the transaction.
    Rollback {
        txn: u64,
        level: u8,
        undone: u32,
    },
    Checkpoint {
        checkpoint_lsn: Lsn,
    },
    CleanShutdown,
    /// Written at the end of every recovery: every transaction logged before it is resolved
    /// (committed, rolled back, or undone by recovery). Transaction ids restart after it.
    RecoveryComplete,
    /// `JetStopServiceInstance2(JET_bitStopServiceStopAndEmitLog)`: the run logged nothing
    /// after this (ESE's end-of-log-stream signal). Everything before it was durable when it
    /// was written. It resolves no transaction: one still open here is a loser.
    EndOfLogStream,
}

mod tag {
    pub const ATTACH_DATABASE: u8 = 1;
    pub const DETACH_DATABASE: u8 = 2;
    pub const PAGE_IMAGES: u8 = 3;
    pub const BEGIN: u8 = 4;
    pub const UNDO: u8 = 5;
    pub const COMMIT: u8 = 6;
    pub const ROLLBACK: u8 = 7;
    pub const CHECKPOINT: u8 = 8;
    pub const CLEAN_SHUTDOWN: u8 = 9;
    pub const RECOVERY_COMPLETE: u8 = 10;
    pub const END_OF_LOG_STREAM: u8 = 11;
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Lengths are bounded by MAX_LOG_RECORD_PAYLOAD_BYTES, checked after encoding.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

impl LogRecord {
    /// The record's payload (tag and fields, without the frame).
    pub fn encode_payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_payload_into(&mut out);
        out
    }

    /// Appends the record's payload to `out`.
    fn encode_payload_into(&self, out: &mut Vec<u8>) {
        match self {
            LogRecord::AttachDatabase { file, path } => {
                out.push(tag::ATTACH_DATABASE);
                out.extend_from_slice(&file.0.to_le_bytes());
                put_bytes(out, path.as_bytes());
            }
            LogRecord::DetachDatabase { file } => {
                out.push(tag::DETACH_DATABASE);
                out.extend_from_slice(&file.0.to_le_bytes());
            }
            LogRecord::PageImages { file, images } => {
                out.push(tag::PAGE_IMAGES);
                out.extend_from_slice(&file.0.to_le_bytes());
                out.extend_from_slice(&(images.len() as u32).to_le_bytes());
                for (page, image) in images {
                    out.extend_from_slice(&page.to_le_bytes());
                    put_bytes(out, image);
                }
            }
            LogRecord::Begin { txn } => {
                out.push(tag::BEGIN);
                out.extend_from_slice(&txn.to_le_bytes());
            }
            LogRecord::Undo {
                txn,
                file,
                table_root,
                key,
                before,
            } => {
                out.push(tag::UNDO);
                out.extend_from_slice(&txn.to_le_bytes());
                out.extend_from_slice(&file.0.to_le_bytes());
                out.extend_from_slice(&table_root.to_le_bytes());
                put_bytes(out, key);
                match before {
                    None => out.push(0),
                    Some(before) => {
                        out.push(1);
                        put_bytes(out, before);
                    }
                }
            }
            LogRecord::Commit { txn, commit_ts } => {
                out.push(tag::COMMIT);
                out.extend_from_slice(&txn.to_le_bytes());
                out.extend_from_slice(&commit_ts.to_le_bytes());
            }
            LogRecord::Rollback { txn, level, undone } => {
                out.push(tag::ROLLBACK);
                out.extend_from_slice(&txn.to_le_bytes());
                out.push(*level);
                out.extend_from_slice(&undone.to_le_bytes());
            }
            LogRecord::Checkpoint { checkpoint_lsn } => {
                out.push(tag::CHECKPOINT);
                out.extend_from_slice(&checkpoint_lsn.to_le_bytes());
            }
            LogRecord::CleanShutdown => out.push(tag::CLEAN_SHUTDOWN),
            LogRecord::RecoveryComplete => out.push(tag::RECOVERY_COMPLETE),
            LogRecord::EndOfLogStream => out.push(tag::END_OF_LOG_STREAM),
        }
    }

    /// Parses a payload; `None` if it is not exactly one well-formed record.
    pub fn decode_payload(payload: &[u8]) -> Option<LogRecord> {
        let mut reader = Reader {
            bytes: payload,
            offset: 0,
        };
        let record = match reader.u8()? {
            tag::ATTACH_DATABASE => LogRecord::AttachDatabase {
                file: FileId(reader.u32()?),
                path: String::from_utf8(reader.bytes()?.to_vec()).ok()?,
            },
            tag::DETACH_DATABASE => LogRecord::DetachDatabase {
                file: FileId(reader.u32()?),
            },
            tag::PAGE_IMAGES => {
                let file = FileId(reader.u32()?);
                let count = usize::try_from(reader.u32()?).ok()?;
                // Bounded by the payload: each image takes more than a page of it.
                if count == 0 || count > payload.len() / PAGE_SIZE_BYTES {
                    return None;
                }
                let mut images: Vec<(PageNumber, Vec<u8>)> = Vec::with_capacity(count);
                for _ in 0..count {
                    let page = reader.u32()?;
                    let image = reader.bytes()?.to_vec();
                    let ascending = images.last().is_none_or(|(last, _)| *last < page);
                    if image.len() != PAGE_SIZE_BYTES || !ascending {
                        return None;
                    }
                    images.push((page, image));
                }
                LogRecord::PageImages { file, images }
            }
            tag::BEGIN => LogRecord::Begin { txn: reader.u64()? },
            tag::UNDO => LogRecord::Undo {
                txn: reader.u64()?,
                file: FileId(reader.u32()?),
                table_root: reader.u32()?,
                key: reader.bytes()?.to_vec(),
                before: match reader.u8()? {
                    0 => None,
                    1 => Some(reader.bytes()?.to_vec()),
                    _ => return None,
                },
            },
            tag::COMMIT => LogRecord::Commit {
                txn: reader.u64()?,
                commit_ts: reader.u64()?,
            },
            tag::ROLLBACK => LogRecord::Rollback {
                txn: reader.u64()?,
                level: reader.u8()?,
                undone: reader.u32()?,
            },
            tag::CHECKPOINT => LogRecord::Checkpoint {
                checkpoint_lsn: reader.u64()?,
            },
            tag::CLEAN_SHUTDOWN => LogRecord::CleanShutdown,
            tag::RECOVERY_COMPLETE => LogRecord::RecoveryComplete,
            tag::END_OF_LOG_STREAM => LogRecord::EndOfLogStream,
            _ => return None,
        };
        // Trailing bytes mean the payload is not what the writer produced.
        (reader.offset == payload.len()).then_some(record)
    }

    /// The framed record: length, checksum, payload. `RecordTooBig` past the payload limit.
    pub fn encode_framed(&self) -> JetResult<Vec<u8>> {
        let mut framed = Vec::new();
        self.encode_framed_into(&mut framed)?;
        Ok(framed)
    }

    /// Appends the framed record to `out`, encoded in place (a page-images record is a few
    /// kilobytes, appended under the store latch: one copy of each image, no other buffer).
    /// `RecordTooBig` past the payload limit, with `out` as it was.
    fn encode_framed_into(&self, out: &mut Vec<u8>) -> JetResult<()> {
        let start = out.len();
        out.extend_from_slice(&[0; RECORD_FRAME_BYTES]);
        self.encode_payload_into(out);
        let payload_len = out.len() - start - RECORD_FRAME_BYTES;
        if payload_len > MAX_LOG_RECORD_PAYLOAD_BYTES {
            out.truncate(start);
            return Err(JetError::RecordTooBig);
        }
        // The checksum covers the length and the payload.
        let len = (payload_len as u32).to_le_bytes();
        let mut checksum = crc32fast::Hasher::new();
        checksum.update(&len);
        checksum.update(&out[start + RECORD_FRAME_BYTES..]);
        out[start..start + 4].copy_from_slice(&len);
        out[start + 4..start + RECORD_FRAME_BYTES]
            .copy_from_slice(&checksum.finalize().to_le_bytes());
        Ok(())
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.offset.checked_add(len)?;
        let slice = self.bytes.get(self.offset..end)?;
        self.offset = end;
        Some(slice)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        self.take(len)
    }
}

fn encode_log_header(signature: u64) -> [u8; LOG_HEADER_BYTES as usize] {
    let mut header = [0u8; LOG_HEADER_BYTES as usize];
    header[..8].copy_from_slice(&LOG_MAGIC.to_le_bytes());
    header[8..12].copy_from_slice(&LOG_FORMAT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&signature.to_le_bytes());
    header
}

/// The signature of a valid log header, or `None`.
fn log_header_signature(bytes: &[u8]) -> Option<u64> {
    let header = bytes.get(..LOG_HEADER_BYTES as usize)?;
    let signature = u64::from_le_bytes(header[16..24].try_into().ok()?);
    (signature != 0 && *header == encode_log_header(signature)).then_some(signature)
}

/// A new log's signature: its path and a caller's salt (the clock at creation), mixed. Never
/// 0, which databases use for "no log".
pub fn new_log_signature(path: &str, salt: u64) -> u64 {
    // FNV-1a over the path, then SplitMix64's finaliser over path hash and salt.
    let mut hash = 0xCBF2_9CE4_8422_2325u64;
    for byte in path.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3);
    }
    let mut z = (hash ^ salt.rotate_left(32)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).max(1)
}

/// Decodes a whole log file: every record of the valid prefix with its LSN, and the length
/// of that prefix in bytes (header included). A missing or bad header yields `([], 0)`.
pub fn decode_all(bytes: &[u8]) -> (Vec<(Lsn, LogRecord)>, u64) {
    let decoded = decode_log(bytes, true);
    (decoded.records, decoded.valid_len)
}

/// A decoded log file (see [`decode_log`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedLog {
    /// The records of the valid prefix, with their LSNs.
    pub records: Vec<(Lsn, LogRecord)>,
    /// The length of the valid prefix in bytes, header included (0: no valid header).
    pub valid_len: u64,
    /// The prefix ended at a whole frame whose checksum failed: garbage, a flipped bit or a
    /// torn record that only the CRC told from a record.
    pub ended_at_bad_checksum: bool,
}

/// [`decode_all`], saying why the valid prefix ended. `verify_checksums` is `false` only for
/// the planted bug [`crate::Mutant::LogChecksumIgnored`]: frames are then taken on their
/// length and payload alone.
pub fn decode_log(bytes: &[u8], verify_checksums: bool) -> DecodedLog {
    let mut decoded = DecodedLog {
        records: Vec::new(),
        valid_len: 0,
        ended_at_bad_checksum: false,
    };
    if log_header_signature(bytes).is_none() {
        return decoded;
    }
    let (end, ended_at_bad_checksum) = decode_frames(
        bytes,
        LOG_HEADER_BYTES as usize,
        verify_checksums,
        &mut decoded.records,
    );
    decoded.valid_len = end as u64;
    decoded.ended_at_bad_checksum = ended_at_bad_checksum;
    decoded
}

/// The signature in a log file's header (`None`: no valid header yet).
pub fn log_signature_of(bytes: &[u8]) -> Option<u64> {
    log_header_signature(bytes)
}

/// Decodes the records of a log file's valid prefix that start at or after `offset` (a
/// record boundary: the header's end, or an end an earlier call returned), appending them to
/// `records`; returns where the valid prefix ends. For observers that read a growing log a
/// piece at a time.
pub fn decode_records_from(bytes: &[u8], offset: u64, records: &mut Vec<(Lsn, LogRecord)>) -> u64 {
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    if log_header_signature(bytes).is_none() || offset < LOG_HEADER_BYTES as usize {
        return offset as u64;
    }
    decode_frames(bytes, offset, true, records).0 as u64
}

/// Decodes whole frames from `offset` on until one is short, torn, fails its checksum or does
/// not parse; returns where that is and whether a checksum stopped it.
fn decode_frames(
    bytes: &[u8],
    mut offset: usize,
    verify_checksums: bool,
    records: &mut Vec<(Lsn, LogRecord)>,
) -> (usize, bool) {
    // Each iteration consumes at least RECORD_FRAME_BYTES, so the loop is bounded.
    while let Some(frame) = bytes.get(offset..offset + RECORD_FRAME_BYTES) {
        let len_bytes: [u8; 4] = frame[..4].try_into().expect("4 bytes");
        let payload_len = u32::from_le_bytes(len_bytes) as usize;
        if payload_len == 0 || payload_len > MAX_LOG_RECORD_PAYLOAD_BYTES {
            break;
        }
        let stored_crc = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes"));
        let start = offset + RECORD_FRAME_BYTES;
        let Some(payload) = bytes.get(start..start + payload_len) else {
            break; // torn: the record runs past the end
        };
        let mut checked = Vec::with_capacity(4 + payload_len);
        checked.extend_from_slice(&len_bytes);
        checked.extend_from_slice(payload);
        if verify_checksums && crc32(&checked) != stored_crc {
            return (offset, true);
        }
        let Some(record) = LogRecord::decode_payload(payload) else {
            break;
        };
        records.push((offset as Lsn, record));
        offset = start + payload_len;
    }
    (offset, false)
}

/// Counters of log I/O.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    pub bytes_written: u64,
    pub flushes: u64,
}

/// The append-only log: an in-memory tail over a file.
pub struct Log {
    /// Shared so a group-commit flush can write it with no lock held (see [`LogFlush`]).
    file: Arc<dyn IoFile>,
    /// Appended but not yet written bytes; they start at `flushed_lsn`.
    unflushed: Vec<u8>,
    flushed_lsn: Lsn,
    stats: LogStats,
    signature: u64,
    /// Bytes cut off the end of the file at open: a torn or garbage tail.
    torn_tail_bytes: u64,
    /// The cut tail began with a whole frame whose checksum failed.
    tail_checksum_failed: bool,
    /// Set by [`Log::stop_and_emit`]: appends are refused from then on.
    stopped: bool,
    /// A [`LogFlush`] is being written outside the instance lock.
    flush_in_flight: bool,
    /// Run before a flush made under a latch ([`Log::flush`]; see
    /// [`crate::storage::Storage::set_latched_io_check`]).
    pub(crate) latched_io_check: crate::runtime::sync::LatchedIoCheck,
    /// Planted bug [`crate::Mutant::GroupFlushEndRewindsLog`].
    pub(crate) stale_flush_end_rewinds: bool,
}

/// A group-commit flush: the log's unflushed bytes, taken under the instance lock by
/// [`Log::begin_flush`], written and synced by [`LogFlush::write_and_sync`] with no lock held
/// (so other sessions keep running and appending meanwhile), and accounted by
/// [`Log::finish_flush`] under the lock again. Every record appended before the flush began
/// is covered: committers that appended while another flush was in flight share the next one.
///
/// A flush the buffer manager makes under the lock (the WAL rule before a write-back) may
/// write the same range meanwhile: both write identical bytes at identical offsets, so the
/// file's content does not depend on their order.
pub struct LogFlush {
    file: Arc<dyn IoFile>,
    offset: Lsn,
    bytes: Vec<u8>,
}

impl LogFlush {
    /// The LSN this flush makes durable: every record before it.
    pub fn end_lsn(&self) -> Lsn {
        self.offset + self.bytes.len() as u64
    }

    /// Writes and syncs the bytes. Called with no lock held ([`Unlatched`] says so).
    pub fn write_and_sync(&self, _unlatched: Unlatched) -> std::io::Result<()> {
        self.file.write_at(self.offset, &self.bytes)?;
        self.file.sync()
    }
}

/// What [`Log::begin_flush`] found.
pub enum FlushStart {
    /// Everything appended is already durable.
    Durable,
    /// Another flush is being written: wait for it, then look again.
    InFlight,
    /// This caller writes the flush.
    Started(LogFlush),
}

impl Log {
    /// Opens `path`, or creates it with a fresh header. An existing log continues after its
    /// valid prefix (a torn tail is cut off). Returns the records of that prefix too, so the
    /// caller can learn what earlier runs did. A bad header is `DatabaseCorrupted`.
    pub fn open(io: &dyn Io, path: &str) -> JetResult<(Log, Vec<(Lsn, LogRecord)>)> {
        Self::open_salted(io, path, 0, true)
    }

    /// [`Log::open`]; a newly created log's signature mixes the path with `salt`.
    /// `verify_checksums` is `false` only for the planted bug
    /// [`crate::Mutant::LogChecksumIgnored`].
    pub fn open_salted(
        io: &dyn Io,
        path: &str,
        salt: u64,
        verify_checksums: bool,
    ) -> JetResult<(Log, Vec<(Lsn, LogRecord)>)> {
        // An empty file, or one no longer than a header that is not valid, is a creation
        // that crashed before its header was synced (lost, or garbage at the crash): start
        // it afresh. Records are only appended after the header's sync, so nothing can
        // depend on such a file.
        let unfinished_creation = io.exists(path) && {
            let file = io.open(path).map_err(|e| JetError::from_io(&e))?;
            let len = file.len().map_err(|e| JetError::from_io(&e))?;
            len == 0
                || (len <= LOG_HEADER_BYTES && {
                    let mut header = vec![0u8; len as usize];
                    file.read_at(0, &mut header)
                        .map_err(|e| JetError::from_io(&e))?;
                    log_header_signature(&header).is_none()
                })
        };
        if !io.exists(path) || unfinished_creation {
            let signature = new_log_signature(path, salt);
            let file = io.create(path).map_err(|e| JetError::from_io(&e))?;
            file.write_at(0, &encode_log_header(signature))
                .map_err(|e| JetError::from_io(&e))?;
            file.sync().map_err(|e| JetError::from_io(&e))?;
            let log = Log {
                file: Arc::from(file),
                unflushed: Vec::new(),
                flushed_lsn: LOG_HEADER_BYTES,
                stats: LogStats::default(),
                signature,
                torn_tail_bytes: 0,
                tail_checksum_failed: false,
                stopped: false,
                flush_in_flight: false,
                latched_io_check: super::no_latched_io_check,
                stale_flush_end_rewinds: false,
            };
            return Ok((log, Vec::new()));
        }
        let file = io.open(path).map_err(|e| JetError::from_io(&e))?;
        let len = file.len().map_err(|e| JetError::from_io(&e))?;
        let len = usize::try_from(len).map_err(|_| JetError::DatabaseCorrupted)?;
        let mut bytes = vec![0u8; len];
        file.read_at(0, &mut bytes)
            .map_err(|e| JetError::from_io(&e))?;
        let Some(signature) = log_header_signature(&bytes) else {
            return Err(JetError::DatabaseCorrupted);
        };
        let decoded = decode_log(&bytes, verify_checksums);
        let (records, valid_len) = (decoded.records, decoded.valid_len);
        assert!(valid_len >= LOG_HEADER_BYTES);
        if valid_len < len as u64 {
            file.set_len(valid_len).map_err(|e| JetError::from_io(&e))?;
            file.sync().map_err(|e| JetError::from_io(&e))?;
        }
        let log = Log {
            file: Arc::from(file),
            unflushed: Vec::new(),
            flushed_lsn: valid_len,
            stats: LogStats::default(),
            signature,
            torn_tail_bytes: len as u64 - valid_len,
            tail_checksum_failed: decoded.ended_at_bad_checksum,
            stopped: false,
            flush_in_flight: false,
            latched_io_check: super::no_latched_io_check,
            stale_flush_end_rewinds: false,
        };
        Ok((log, records))
    }

    /// Appends a record to the in-memory tail and returns its LSN. Nothing is written until
    /// [`Log::flush`].
    pub fn append(&mut self, record: &LogRecord) -> JetResult<Lsn> {
        self.check_writable()?;
        let lsn = self.tip_lsn();
        record.encode_framed_into(&mut self.unflushed)?;
        debug_assert!(lsn >= LOG_HEADER_BYTES);
        Ok(lsn)
    }

    /// Writes the unflushed tail and syncs the file. On failure the tail stays buffered and
    /// the error is `LogWriteFail` (whether the bytes reached the disk is unknown).
    pub fn flush(&mut self) -> JetResult<()> {
        if self.unflushed.is_empty() {
            return Ok(());
        }
        (self.latched_io_check)();
        self.file
            .write_at(self.flushed_lsn, &self.unflushed)
            .map_err(|_| JetError::LogWriteFail)?;
        self.file.sync().map_err(|_| JetError::LogWriteFail)?;
        self.stats.bytes_written += self.unflushed.len() as u64;
        self.stats.flushes += 1;
        self.flushed_lsn += self.unflushed.len() as u64;
        self.unflushed.clear();
        debug_assert_eq!(self.flushed_lsn, self.tip_lsn());
        Ok(())
    }

    /// Starts a group-commit flush of everything appended so far (see [`LogFlush`]). At most
    /// one is in flight; the caller must pass it to [`Log::finish_flush`].
    pub fn begin_flush(&mut self) -> FlushStart {
        if self.unflushed.is_empty() {
            return FlushStart::Durable;
        }
        if self.flush_in_flight {
            return FlushStart::InFlight;
        }
        self.flush_in_flight = true;
        FlushStart::Started(LogFlush {
            file: Arc::clone(&self.file),
            offset: self.flushed_lsn,
            bytes: self.unflushed.clone(),
        })
    }

    /// Accounts a flush begun by [`Log::begin_flush`]. On failure nothing is marked durable
    /// and the error is `LogWriteFail`, as for [`Log::flush`].
    pub fn finish_flush(&mut self, flush: &LogFlush, result: std::io::Result<()>) -> JetResult<()> {
        assert!(self.flush_in_flight, "finish_flush without begin_flush");
        self.flush_in_flight = false;
        result.map_err(|_| JetError::LogWriteFail)?;
        let end = flush.end_lsn();
        // A flush under the lock may have made the range durable meanwhile.
        if end > self.flushed_lsn || self.stale_flush_end_rewinds {
            let newly = usize::try_from(end.saturating_sub(self.flushed_lsn)).expect("in memory");
            self.unflushed.drain(..newly);
            self.stats.bytes_written += newly as u64;
            self.stats.flushes += 1;
            self.flushed_lsn = end;
        }
        Ok(())
    }

    /// `LogServiceStopped` once [`Log::stop_and_emit`] ended logging: the error ESE's log
    /// returns after `ErrLGStopAndEmitLog` (`SetNoMoreLogWrite(errLogServiceStopped)`).
    pub fn check_writable(&self) -> JetResult<()> {
        match self.stopped {
            true => Err(JetError::LogServiceStopped),
            false => Ok(()),
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// ESE's `LOG::ErrLGStopAndEmitLog`: refuse every later append, write out everything
    /// already appended, then the end-of-log-stream marker, durably. Returns whether this call
    /// ended the stream (`false`: an earlier one did; nothing is written twice). If a write
    /// fails the log is stopped all the same (ESE sets no-more-log-write first) and the error
    /// is `LogWriteFail`.
    pub fn stop_and_emit(&mut self) -> JetResult<bool> {
        if self.stopped {
            return Ok(false);
        }
        let marker = LogRecord::EndOfLogStream.encode_framed()?;
        self.unflushed.extend_from_slice(&marker);
        self.stopped = true;
        self.flush()?;
        Ok(true)
    }

    /// The LSN the next record will get: the end of the appended log.
    pub fn tip_lsn(&self) -> Lsn {
        self.flushed_lsn + self.unflushed.len() as u64
    }

    /// Whether a group-commit flush begun by [`Log::begin_flush`] has not been finished.
    pub fn flush_in_flight(&self) -> bool {
        self.flush_in_flight
    }

    /// Everything below this LSN is on disk and synced.
    pub fn flushed_lsn(&self) -> Lsn {
        self.flushed_lsn
    }

    pub fn stats(&self) -> LogStats {
        self.stats
    }

    /// This log's identity (see the module documentation).
    pub fn signature(&self) -> u64 {
        self.signature
    }

    /// Bytes of torn or garbage tail [`Log::open`] cut off.
    pub fn torn_tail_bytes(&self) -> u64 {
        self.torn_tail_bytes
    }

    /// Whether the tail [`Log::open`] cut off began with a whole frame whose checksum failed.
    pub fn tail_checksum_failed(&self) -> bool {
        self.tail_checksum_failed
    }

    /// Syncs and drops the file handle.
    pub fn close(mut self) -> JetResult<()> {
        self.flush()?;
        self.file.sync().map_err(|e| JetError::from_io(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::io::MemIo;
    use quickcheck::{Arbitrary, Gen, QuickCheck};

    fn small_bytes(g: &mut Gen, max: usize) -> Vec<u8> {
        let len = usize::arbitrary(g) % (max + 1);
        (0..len).map(|_| u8::arbitrary(g)).collect()
    }

    impl Arbitrary for LogRecord {
        fn arbitrary(g: &mut Gen) -> Self {
            let file = FileId(u32::arbitrary(g));
            match u8::arbitrary(g) % 11 {
                0 => LogRecord::AttachDatabase {
                    file,
                    path: String::arbitrary(g),
                },
                1 => LogRecord::DetachDatabase { file },
                2 => {
                    let mut pages: Vec<PageNumber> = Vec::arbitrary(g);
                    pages.push(u32::arbitrary(g));
                    pages.sort_unstable();
                    pages.dedup();
                    pages.truncate(4);
                    let images = pages
                        .into_iter()
                        .map(|page| {
                            let image = (0..PAGE_SIZE_BYTES).map(|_| u8::arbitrary(g)).collect();
                            (page, image)
                        })
                        .collect();
                    LogRecord::PageImages { file, images }
                }
                3 => LogRecord::Begin {
                    txn: u64::arbitrary(g),
                },
                4 => LogRecord::Undo {
                    txn: u64::arbitrary(g),
                    file,
                    table_root: u32::arbitrary(g),
                    key: small_bytes(g, 128),
                    before: Option::<()>::arbitrary(g).map(|_| small_bytes(g, 512)),
                },
                5 => LogRecord::Commit {
                    txn: u64::arbitrary(g),
                    commit_ts: u64::arbitrary(g),
                },
                6 => LogRecord::Rollback {
                    txn: u64::arbitrary(g),
                    level: u8::arbitrary(g),
                    undone: u32::arbitrary(g),
                },
                7 => LogRecord::Checkpoint {
                    checkpoint_lsn: u64::arbitrary(g),
                },
                8 => LogRecord::RecoveryComplete,
                9 => LogRecord::EndOfLogStream,
                _ => LogRecord::CleanShutdown,
            }
        }
    }

    fn log_bytes(records: &[LogRecord]) -> (Vec<u8>, Vec<Lsn>) {
        let mut bytes = encode_log_header(42).to_vec();
        let mut lsns = Vec::new();
        for record in records {
            lsns.push(bytes.len() as Lsn);
            bytes.extend_from_slice(&record.encode_framed().expect("fits"));
        }
        (bytes, lsns)
    }

    fn records_round_trip(records: Vec<LogRecord>) -> bool {
        let (bytes, lsns) = log_bytes(&records);
        let (decoded, valid_len) = decode_all(&bytes);
        let expected: Vec<(Lsn, LogRecord)> = lsns.into_iter().zip(records).collect();
        decoded == expected && valid_len == bytes.len() as u64
    }

    #[test]
    fn quickcheck_records_round_trip() {
        QuickCheck::new()
            .tests(200)
            .quickcheck(records_round_trip as fn(Vec<LogRecord>) -> bool);
    }

    fn garbage_never_panics(bytes: Vec<u8>) -> bool {
        let mut with_header = encode_log_header(42).to_vec();
        with_header.extend_from_slice(&bytes);
        let (_, valid_len) = decode_all(&with_header);
        valid_len >= LOG_HEADER_BYTES && valid_len <= with_header.len() as u64
    }

    #[test]
    fn quickcheck_garbage_never_panics() {
        QuickCheck::new()
            .tests(200)
            .quickcheck(garbage_never_panics as fn(Vec<u8>) -> bool);
    }

    #[test]
    fn truncation_at_every_byte_yields_a_valid_prefix() {
        // Goal: a torn tail at any offset decodes to exactly the records wholly before it.
        let records = vec![
            LogRecord::Begin { txn: 1 },
            LogRecord::AttachDatabase {
                file: FileId(3),
                path: "db/a.edb".into(),
            },
            LogRecord::Undo {
                txn: 1,
                file: FileId(3),
                table_root: 2,
                key: b"k".to_vec(),
                before: Some(b"old".to_vec()),
            },
            LogRecord::Commit {
                txn: 1,
                commit_ts: 9,
            },
            LogRecord::CleanShutdown,
        ];
        let (bytes, lsns) = log_bytes(&records);
        let ends: Vec<u64> = lsns[1..]
            .iter()
            .copied()
            .chain([bytes.len() as u64])
            .collect();
        for cut in 0..=bytes.len() {
            let (decoded, valid_len) = decode_all(&bytes[..cut]);
            if cut < LOG_HEADER_BYTES as usize {
                assert_eq!((decoded.len(), valid_len), (0, 0));
                continue;
            }
            let whole = ends.iter().filter(|&&end| end <= cut as u64).count();
            assert_eq!(decoded.len(), whole, "cut at {cut}");
            let expected_len = if whole == 0 {
                LOG_HEADER_BYTES
            } else {
                ends[whole - 1]
            };
            assert_eq!(valid_len, expected_len);
            assert!(decoded.iter().zip(&records).all(|((_, d), r)| d == r));
        }
    }

    #[test]
    fn flipped_byte_ends_the_valid_prefix() {
        let records = vec![LogRecord::Begin { txn: 1 }, LogRecord::Begin { txn: 2 }];
        let (mut bytes, lsns) = log_bytes(&records);
        bytes[lsns[1] as usize + 9] ^= 0x40;
        let (decoded, valid_len) = decode_all(&bytes);
        assert_eq!(decoded.len(), 1);
        assert_eq!(valid_len, lsns[1]);
    }

    #[test]
    fn log_appends_flushes_and_reopens_after_a_torn_tail() {
        // Goal: LSNs start after the header, flush persists, reopen cuts a torn tail and
        // continues exactly at the end of the valid prefix.
        let io = MemIo::new();
        let (mut log, records) = Log::open(&io, "log/jet.log").expect("create");
        assert!(records.is_empty());
        let first = log.append(&LogRecord::Begin { txn: 7 }).expect("append");
        assert_eq!(first, LOG_HEADER_BYTES);
        let second = log.append(&LogRecord::CleanShutdown).expect("append");
        assert!(second > first);
        assert_eq!(log.flushed_lsn(), LOG_HEADER_BYTES);
        log.flush().expect("flush");
        assert_eq!(log.flushed_lsn(), log.tip_lsn());
        let tip = log.tip_lsn();
        assert_eq!(log.stats().flushes, 1);
        drop(log);

        // Tear the tail: half a record of garbage after the valid prefix.
        let file = io.open("log/jet.log").expect("open");
        file.write_at(tip, &[5, 0, 0, 0, 1, 2]).expect("write");
        let (mut log, records) = Log::open(&io, "log/jet.log").expect("reopen");
        assert_eq!(records.len(), 2);
        assert_eq!(log.tip_lsn(), tip);
        assert_eq!(file.len().expect("len"), tip);
        let third = log.append(&LogRecord::Begin { txn: 8 }).expect("append");
        assert_eq!(third, tip);
        log.close().expect("close");
        let (_, records) = Log::open(&io, "log/jet.log").expect("reopen");
        assert_eq!(records.last(), Some(&(tip, LogRecord::Begin { txn: 8 })));
    }

    #[test]
    fn bad_log_header_is_corruption() {
        let io = MemIo::new();
        io.create("empty.log").expect("create");
        let (log, records) = Log::open(&io, "empty.log").expect("an empty file starts afresh");
        assert_eq!((log.tip_lsn(), records.len()), (LOG_HEADER_BYTES, 0));
        let file = io.create("bad.log").expect("create");
        file.write_at(0, b"not a log file at all, and longer than a header")
            .expect("write");
        assert!(matches!(
            Log::open(&io, "bad.log"),
            Err(JetError::DatabaseCorrupted)
        ));
    }

    #[test]
    fn a_garbage_header_no_longer_than_a_header_is_an_unfinished_creation() {
        // Goal: a log whose header write was damaged at a crash before its sync (the disk's
        // garbage sectors) starts afresh; a bad header with records after it stays corruption.
        let io = MemIo::new();
        let file = io.create("short.log").expect("create");
        file.write_at(0, &[0x5A; LOG_HEADER_BYTES as usize])
            .expect("write");
        let (log, records) = Log::open(&io, "short.log").expect("a fresh start");
        assert_eq!((log.tip_lsn(), records.len()), (LOG_HEADER_BYTES, 0));
        file.write_at(0, &[0x5A; LOG_HEADER_BYTES as usize + 1])
            .expect("write");
        assert!(matches!(
            Log::open(&io, "short.log"),
            Err(JetError::DatabaseCorrupted)
        ));
    }

    #[test]
    fn decode_log_says_when_the_checksum_ended_it() {
        let records = vec![LogRecord::Begin { txn: 1 }, LogRecord::Begin { txn: 2 }];
        let (mut bytes, lsns) = log_bytes(&records);
        assert!(!decode_log(&bytes, true).ended_at_bad_checksum);
        bytes[lsns[1] as usize + 9] ^= 0x40;
        let decoded = decode_log(&bytes, true);
        assert!(decoded.ended_at_bad_checksum);
        assert_eq!((decoded.records.len(), decoded.valid_len), (1, lsns[1]));
        let unchecked = decode_log(&bytes, false);
        assert_eq!(unchecked.records.len(), 2, "a flipped record parses");
    }

    #[test]
    fn oversize_record_is_refused() {
        let record = LogRecord::Undo {
            txn: 1,
            file: FileId(1),
            table_root: 2,
            key: vec![0; MAX_LOG_RECORD_PAYLOAD_BYTES],
            before: None,
        };
        assert_eq!(record.encode_framed(), Err(JetError::RecordTooBig));
    }
}
