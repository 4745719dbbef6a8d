//! Page layout and the node codec: how one fixed-size page is laid out in bytes, its
//! checksum, and the conversion between page bytes and the in-memory [`PageContent`].
//!
//! Every page starts with a 16-byte header:
//!
//! | offset | bytes | field                                                      |
//! |--------|-------|------------------------------------------------------------|
//! | 0      | 4     | CRC-32 (IEEE, reflected, poly 0xEDB88320) of bytes 4..end  |
//! | 4      | 1     | page kind ([`PageKind`])                                   |
//! | 5      | 1     | reserved, zero                                             |
//! | 6      | 2     | entry count (leaf entries / internal keys), LE             |
//! | 8      | 8     | page LSN: the log record that last changed the page, LE    |
//!
//! Bodies (all integers little-endian):
//! - database header: magic u64, format version u32, page count u32, free-list head u32,
//!   free page count u32, catalog root u32, log signature u64 (the log this database belongs
//!   to, ESE's `signLog`; stamped durably at create and attach), clean-shutdown flag u8
//!   (ESE's `dbstate`: 1 once detached or shut down cleanly, 0 while attached).
//! - leaf: per entry `key_len u16, value_len u16, key, value`, keys strictly ascending.
//! - internal: `child0 u32`, then per key `key_len u16, key, child u32`, keys strictly
//!   ascending. `children[i]` holds keys `< keys[i]`, `children[i+1]` keys `>= keys[i]`.
//! - free: next free page u32 (0 = end of the free list; page 0 is never free).
//!
//! The rest of the page is zero. The checksum covers the zero tail too, so an all-zero page
//! (never written) fails verification instead of decoding as an empty node.

use super::{Lsn, PageNumber, MAX_KEY_BYTES, MAX_VALUE_BYTES, PAGE_SIZE_BYTES};
use crate::error::{JetError, JetResult};

/// Bytes of the common page header.
pub const PAGE_HEADER_BYTES: usize = 16;
/// Bytes available to a page body.
pub const PAGE_BODY_BYTES: usize = PAGE_SIZE_BYTES - PAGE_HEADER_BYTES;
/// Identifies a jetsim database file ("JETSIMDB").
pub const DATABASE_MAGIC: u64 = u64::from_le_bytes(*b"JETSIMDB");
/// Bumped whenever the on-disk layout changes.
pub const DATABASE_FORMAT_VERSION: u32 = 3;

const LEAF_ENTRY_OVERHEAD_BYTES: usize = 4;
const INTERNAL_KEY_OVERHEAD_BYTES: usize = 6;
const INTERNAL_FIRST_CHILD_BYTES: usize = 4;

// A leaf must hold at least three max-size entries, so a split of an overfull leaf always
// leaves both halves non-empty and an internal node always has room for a separator.
const _: () =
    assert!(3 * (LEAF_ENTRY_OVERHEAD_BYTES + MAX_KEY_BYTES + MAX_VALUE_BYTES) <= PAGE_BODY_BYTES);
const _: () = assert!(
    INTERNAL_FIRST_CHILD_BYTES + 3 * (INTERNAL_KEY_OVERHEAD_BYTES + MAX_KEY_BYTES)
        <= PAGE_BODY_BYTES
);

/// What a page holds; stored in byte 4 of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PageKind {
    Header = 1,
    Leaf = 2,
    Internal = 3,
    Free = 4,
}

impl PageKind {
    // Same shape as `api::handles::HandleKind::from_bits`: see there for why it stays.
    fn from_byte(byte: u8) -> Option<PageKind> {
        match byte {
            1 => Some(PageKind::Header),
            2 => Some(PageKind::Leaf),
            3 => Some(PageKind::Internal),
            4 => Some(PageKind::Free),
            _ => None,
        }
    }
}

/// The database header (page 0), minus the magic and version the codec checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbHeader {
    pub page_count: u32,
    /// First page of the free list; 0 when the list is empty.
    pub free_list_head: PageNumber,
    pub free_page_count: u32,
    pub catalog_root: PageNumber,
    /// Signature of the log that owns the database (0: none yet).
    pub log_signature: u64,
    /// ESE's `dbstate`: true when the file is consistent on its own (detached, or the
    /// instance shut down cleanly), false while a log may hold changes it lacks. Another
    /// instance may attach it only when true.
    pub clean_shutdown: bool,
}

/// A leaf entry: key and value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A B+tree node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Leaf {
        entries: Vec<Entry>,
    },
    Internal {
        keys: Vec<Vec<u8>>,
        children: Vec<PageNumber>,
    },
}

impl Node {
    pub fn empty_leaf() -> Node {
        Node::Leaf {
            entries: Vec::new(),
        }
    }

    /// Bytes the node's body takes on a page.
    pub fn body_size_bytes(&self) -> usize {
        match self {
            Node::Leaf { entries } => entries
                .iter()
                .map(|(k, v)| leaf_entry_size_bytes(k, v))
                .sum(),
            Node::Internal { keys, .. } => {
                INTERNAL_FIRST_CHILD_BYTES
                    + keys
                        .iter()
                        .map(|k| internal_key_size_bytes(k))
                        .sum::<usize>()
            }
        }
    }

    pub fn fits(&self) -> bool {
        self.body_size_bytes() <= PAGE_BODY_BYTES
    }

    /// Leaf entries or internal keys (what the page header's entry count holds).
    pub fn entry_count(&self) -> usize {
        match self {
            Node::Leaf { entries } => entries.len(),
            Node::Internal { keys, .. } => keys.len(),
        }
    }

    pub fn is_leaf(&self) -> bool {
        matches!(self, Node::Leaf { .. })
    }
}

/// Whether a leaf with these entries fits in a page.
pub fn leaf_fits(entries: &[Entry]) -> bool {
    entries
        .iter()
        .map(|(key, value)| leaf_entry_size_bytes(key, value))
        .sum::<usize>()
        <= PAGE_BODY_BYTES
}

/// Whether an internal node with these keys fits in a page.
pub fn internal_fits(keys: &[Vec<u8>]) -> bool {
    INTERNAL_FIRST_CHILD_BYTES
        + keys
            .iter()
            .map(|key| internal_key_size_bytes(key))
            .sum::<usize>()
        <= PAGE_BODY_BYTES
}

pub fn leaf_entry_size_bytes(key: &[u8], value: &[u8]) -> usize {
    LEAF_ENTRY_OVERHEAD_BYTES + key.len() + value.len()
}

pub fn internal_key_size_bytes(key: &[u8]) -> usize {
    INTERNAL_KEY_OVERHEAD_BYTES + key.len()
}

/// Everything a page can hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageContent {
    Header(DbHeader),
    Node(Node),
    Free { next_free: PageNumber },
}

// ---------------------------------------------------------------------------------------------
// CRC-32

/// CRC-32 (IEEE 802.3, the zlib and Ethernet polynomial, reflected, initial value and final
/// xor 0xFFFFFFFF). Every page, log record and checkpoint slot is checked with it, so it is the
/// engine's hottest function: crc32fast computes it with the CPU's carry-less multiply where
/// there is one (a byte-at-a-time table took a quarter of a simulated run's time).
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// A page encoded before the LSN of the record that logs it is known: everything but the
/// LSN and the checksum, and the checksum of the body after the header. A record write
/// encodes its pages while it stages them, beside other writers, and only stamps them
/// ([`UnstampedPage::stamp`]: eight bytes and a checksum of the header's twelve, combined
/// with the body's) under the store latch, where the LSN is taken.
pub struct UnstampedPage {
    bytes: Vec<u8>,
    body_checksum: u32,
}

impl std::fmt::Debug for UnstampedPage {
    /// The page's kind and entry count, not its two kilobytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnstampedPage")
            .field("kind", &self.bytes[4])
            .field(
                "entries",
                &u16::from_le_bytes([self.bytes[6], self.bytes[7]]),
            )
            .field("body_checksum", &self.body_checksum)
            .finish()
    }
}

/// Bytes of a page's header the checksum covers: all but the checksum itself.
const HEADER_CHECKED: std::ops::Range<usize> = 4..PAGE_HEADER_BYTES;
/// Where a page's header keeps its LSN.
const PAGE_LSN_BYTES: std::ops::Range<usize> = 8..16;

impl UnstampedPage {
    /// Encodes `content` with no LSN yet. The caller guarantees the content fits.
    pub fn encode(content: &PageContent) -> Self {
        let bytes = encode_page(content, 0);
        let body_checksum = crc32(&bytes[PAGE_HEADER_BYTES..]);
        UnstampedPage {
            bytes,
            body_checksum,
        }
    }

    /// The page stamped with `page_lsn`: the same bytes [`encode_page`] gives.
    pub fn stamp(mut self, page_lsn: Lsn) -> Vec<u8> {
        self.bytes[PAGE_LSN_BYTES].copy_from_slice(&page_lsn.to_le_bytes());
        let mut checksum = crc32fast::Hasher::new();
        checksum.update(&self.bytes[HEADER_CHECKED]);
        checksum.combine(&crc32fast::Hasher::new_with_initial_len(
            self.body_checksum,
            PAGE_BODY_BYTES as u64,
        ));
        self.bytes[..4].copy_from_slice(&checksum.finalize().to_le_bytes());
        self.bytes
    }
}

/// Encodes `content` as a full page stamped with `page_lsn`. The caller guarantees the
/// content fits (nodes are split before they are encoded).
pub fn encode_page(content: &PageContent, page_lsn: Lsn) -> Vec<u8> {
    let mut page = Vec::with_capacity(PAGE_SIZE_BYTES);
    page.extend_from_slice(&[0; 4]); // checksum, filled in last
    let (kind, count) = match content {
        PageContent::Header(_) => (PageKind::Header, 0),
        PageContent::Node(node @ Node::Leaf { .. }) => (PageKind::Leaf, node.entry_count()),
        PageContent::Node(node @ Node::Internal { .. }) => (PageKind::Internal, node.entry_count()),
        PageContent::Free { .. } => (PageKind::Free, 0),
    };
    page.push(kind as u8);
    page.push(0);
    let count = u16::try_from(count).expect("entry count is bounded by the page size");
    page.extend_from_slice(&count.to_le_bytes());
    page.extend_from_slice(&page_lsn.to_le_bytes());
    debug_assert_eq!(page.len(), PAGE_HEADER_BYTES);
    debug_assert_eq!(page[PAGE_LSN_BYTES], page_lsn.to_le_bytes());

    match content {
        PageContent::Header(header) => {
            page.extend_from_slice(&DATABASE_MAGIC.to_le_bytes());
            page.extend_from_slice(&DATABASE_FORMAT_VERSION.to_le_bytes());
            page.extend_from_slice(&header.page_count.to_le_bytes());
            page.extend_from_slice(&header.free_list_head.to_le_bytes());
            page.extend_from_slice(&header.free_page_count.to_le_bytes());
            page.extend_from_slice(&header.catalog_root.to_le_bytes());
            page.extend_from_slice(&header.log_signature.to_le_bytes());
            page.push(u8::from(header.clean_shutdown));
        }
        PageContent::Node(node) => {
            assert!(node.fits(), "node must be split before it is encoded");
            match node {
                Node::Leaf { entries } => {
                    for (key, value) in entries {
                        page.extend_from_slice(&len_u16(key).to_le_bytes());
                        page.extend_from_slice(&len_u16(value).to_le_bytes());
                        page.extend_from_slice(key);
                        page.extend_from_slice(value);
                    }
                }
                Node::Internal { keys, children } => {
                    assert_eq!(children.len(), keys.len() + 1);
                    page.extend_from_slice(&children[0].to_le_bytes());
                    for (key, child) in keys.iter().zip(&children[1..]) {
                        page.extend_from_slice(&len_u16(key).to_le_bytes());
                        page.extend_from_slice(key);
                        page.extend_from_slice(&child.to_le_bytes());
                    }
                }
            }
        }
        PageContent::Free { next_free } => page.extend_from_slice(&next_free.to_le_bytes()),
    }
    assert!(page.len() <= PAGE_SIZE_BYTES);
    page.resize(PAGE_SIZE_BYTES, 0);
    let checksum = crc32(&page[4..]);
    page[..4].copy_from_slice(&checksum.to_le_bytes());
    page
}

fn len_u16(bytes: &[u8]) -> u16 {
    u16::try_from(bytes.len()).expect("keys and values are bounded far below u16::MAX")
}

/// The page LSN stored in a page's header, without verifying the page.
pub fn page_lsn_of(page: &[u8]) -> Lsn {
    debug_assert_eq!(page.len(), PAGE_SIZE_BYTES);
    page.get(PAGE_LSN_BYTES)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// A bounds-checked reader: every short read is corruption, never a panic.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> JetResult<&'a [u8]> {
        let end = self
            .offset
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(JetError::DatabaseCorrupted)?;
        let slice = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(slice)
    }
    fn u16(&mut self) -> JetResult<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> JetResult<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> JetResult<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

/// Verifies the checksum and decodes a page into its LSN and content. Any inconsistency is
/// `DatabaseCorrupted`.
pub fn decode_page(page: &[u8]) -> JetResult<(Lsn, PageContent)> {
    if page.len() != PAGE_SIZE_BYTES {
        return Err(JetError::DatabaseCorrupted);
    }
    let stored = u32::from_le_bytes(page[..4].try_into().expect("4 bytes"));
    if stored != crc32(&page[4..]) {
        return Err(JetError::DatabaseCorrupted);
    }
    let mut reader = Reader {
        bytes: page,
        offset: 4,
    };
    let kind = PageKind::from_byte(reader.take(1)?[0]).ok_or(JetError::DatabaseCorrupted)?;
    reader.take(1)?;
    let count = usize::from(reader.u16()?);
    let page_lsn = reader.u64()?;
    let content = match kind {
        PageKind::Header => {
            if reader.u64()? != DATABASE_MAGIC || reader.u32()? != DATABASE_FORMAT_VERSION {
                return Err(JetError::DatabaseCorrupted);
            }
            PageContent::Header(DbHeader {
                page_count: reader.u32()?,
                free_list_head: reader.u32()?,
                free_page_count: reader.u32()?,
                catalog_root: reader.u32()?,
                log_signature: reader.u64()?,
                clean_shutdown: match reader.take(1)?[0] {
                    0 => false,
                    1 => true,
                    _ => return Err(JetError::DatabaseCorrupted),
                },
            })
        }
        PageKind::Leaf => {
            let mut entries: Vec<Entry> = Vec::with_capacity(count);
            for _ in 0..count {
                let key_len = usize::from(reader.u16()?);
                let value_len = usize::from(reader.u16()?);
                if key_len > MAX_KEY_BYTES || value_len > MAX_VALUE_BYTES {
                    return Err(JetError::DatabaseCorrupted);
                }
                let key = reader.take(key_len)?.to_vec();
                let value = reader.take(value_len)?.to_vec();
                if entries.last().is_some_and(|(last, _)| *last >= key) {
                    return Err(JetError::DatabaseCorrupted);
                }
                entries.push((key, value));
            }
            PageContent::Node(Node::Leaf { entries })
        }
        PageKind::Internal => {
            let mut keys: Vec<Vec<u8>> = Vec::with_capacity(count);
            let mut children = Vec::with_capacity(count + 1);
            children.push(reader.u32()?);
            for _ in 0..count {
                let key_len = usize::from(reader.u16()?);
                if key_len > MAX_KEY_BYTES {
                    return Err(JetError::DatabaseCorrupted);
                }
                let key = reader.take(key_len)?.to_vec();
                if keys.last().is_some_and(|last| *last >= key) {
                    return Err(JetError::DatabaseCorrupted);
                }
                keys.push(key);
                children.push(reader.u32()?);
            }
            PageContent::Node(Node::Internal { keys, children })
        }
        PageKind::Free => PageContent::Free {
            next_free: reader.u32()?,
        },
    };
    Ok((page_lsn, content))
}

// ---------------------------------------------------------------------------------------------
// Splitting by encoded size

/// Splits an overfull leaf's entries into two non-empty halves that each fit, as even in
/// bytes as possible. Returns `(left, right)`; the separator is `right[0].0`.
pub fn split_leaf(entries: Vec<Entry>) -> (Vec<Entry>, Vec<Entry>) {
    assert!(entries.len() >= 2, "a leaf with one entry always fits");
    let sizes: Vec<usize> = entries
        .iter()
        .map(|(k, v)| leaf_entry_size_bytes(k, v))
        .collect();
    let at = best_split(&sizes, 0, |left, right| {
        left <= PAGE_BODY_BYTES && right <= PAGE_BODY_BYTES
    });
    let mut left = entries;
    let right = left.split_off(at);
    debug_assert!(!left.is_empty() && !right.is_empty());
    (left, right)
}

/// An overfull internal node split around a separator that moves up to the parent.
pub struct InternalSplit {
    pub left_keys: Vec<Vec<u8>>,
    pub left_children: Vec<PageNumber>,
    pub separator: Vec<u8>,
    pub right_keys: Vec<Vec<u8>>,
    pub right_children: Vec<PageNumber>,
}

/// Splits an overfull internal node: `keys[at]` moves up, keys left of it stay left.
pub fn split_internal(keys: Vec<Vec<u8>>, children: Vec<PageNumber>) -> InternalSplit {
    assert_eq!(children.len(), keys.len() + 1);
    assert!(
        keys.len() >= 3,
        "an internal node with two keys always fits"
    );
    let sizes: Vec<usize> = keys.iter().map(|k| internal_key_size_bytes(k)).collect();
    // Candidate `at` puts keys[..at] left and keys[at+1..] right: the left size counts the
    // prefix, the right size is total - prefix - the separator itself.
    let at = best_split(&sizes, 1, |left, right| {
        INTERNAL_FIRST_CHILD_BYTES + left <= PAGE_BODY_BYTES
            && INTERNAL_FIRST_CHILD_BYTES + right <= PAGE_BODY_BYTES
    });
    let mut left_keys = keys;
    let mut right_keys = left_keys.split_off(at);
    let separator = right_keys.remove(0);
    let mut left_children = children;
    let right_children = left_children.split_off(at + 1);
    debug_assert_eq!(left_children.len(), left_keys.len() + 1);
    debug_assert_eq!(right_children.len(), right_keys.len() + 1);
    InternalSplit {
        left_keys,
        left_children,
        separator,
        right_keys,
        right_children,
    }
}

/// The split index in `1..sizes.len() - consumed` whose two sides satisfy `fits` and are
/// closest in bytes. `consumed` is how many items at the split point leave both sides (the
/// internal separator). The size argument in the module's const asserts guarantees one
/// exists for any node that overflowed by at most one max-size item.
fn best_split(sizes: &[usize], consumed: usize, fits: impl Fn(usize, usize) -> bool) -> usize {
    let total: usize = sizes.iter().sum();
    let mut prefix = 0;
    let mut best: Option<(usize, usize)> = None; // (imbalance, index)
    for at in 1..sizes.len() - consumed {
        prefix += sizes[at - 1];
        let right = total - prefix - sizes[at..at + consumed].iter().sum::<usize>();
        if fits(prefix, right) {
            let imbalance = prefix.abs_diff(right);
            match best {
                Some((best_imbalance, _)) if best_imbalance <= imbalance => {}
                _ => best = Some((imbalance, at)),
            }
        }
    }
    best.expect("an overfull node by at most one item always has a valid split")
        .1
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{Arbitrary, Gen, QuickCheck};

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // Goal: the hand-written CRC is the standard one ("123456789" -> 0xCBF43926).
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn zero_page_is_corrupt() {
        // Goal: a page that was never written (zero fill) is not mistaken for an empty node.
        assert_eq!(
            decode_page(&[0u8; PAGE_SIZE_BYTES]),
            Err(JetError::DatabaseCorrupted)
        );
        assert_eq!(decode_page(&[0u8; 10]), Err(JetError::DatabaseCorrupted));
    }

    #[test]
    fn header_and_free_pages_round_trip() {
        let header = PageContent::Header(DbHeader {
            page_count: 7,
            free_list_head: 5,
            free_page_count: 2,
            catalog_root: 1,
            log_signature: 0xABCD,
            clean_shutdown: true,
        });
        let bytes = encode_page(&header, 99);
        assert_eq!(decode_page(&bytes), Ok((99, header)));
        assert_eq!(page_lsn_of(&bytes), 99);
        let free = PageContent::Free { next_free: 3 };
        assert_eq!(decode_page(&encode_page(&free, 1)), Ok((1, free)));
    }

    #[test]
    fn split_leaf_of_max_entries_fits_both_halves() {
        // Goal: four max-size entries (one over capacity) split into two fitting halves.
        let entries: Vec<_> = (0u8..4)
            .map(|i| (vec![i; MAX_KEY_BYTES], vec![i; MAX_VALUE_BYTES]))
            .collect();
        assert!(!Node::Leaf {
            entries: entries.clone()
        }
        .fits());
        let (left, right) = split_leaf(entries);
        assert_eq!((left.len(), right.len()), (2, 2));
    }

    #[test]
    fn split_internal_moves_the_separator_up() {
        let keys: Vec<Vec<u8>> = (0u8..20).map(|i| vec![i; MAX_KEY_BYTES]).collect();
        let children: Vec<PageNumber> = (0..21).collect();
        let split = split_internal(keys, children);
        let left = Node::Internal {
            keys: split.left_keys.clone(),
            children: split.left_children.clone(),
        };
        let right = Node::Internal {
            keys: split.right_keys.clone(),
            children: split.right_children.clone(),
        };
        assert!(left.fits() && right.fits());
        assert_eq!(split.left_keys.len() + split.right_keys.len(), 19);
        assert_eq!(
            split.separator,
            vec![split.left_keys.len() as u8; MAX_KEY_BYTES]
        );
    }

    /// An arbitrary node that fits in a page: sorted unique keys, bounded sizes.
    #[derive(Debug, Clone)]
    struct FittingNode(Node);

    fn bytes(g: &mut Gen, max: usize) -> Vec<u8> {
        let len = usize::arbitrary(g) % (max + 1);
        (0..len).map(|_| u8::arbitrary(g)).collect()
    }

    impl Arbitrary for FittingNode {
        fn arbitrary(g: &mut Gen) -> Self {
            let count = usize::arbitrary(g) % 40;
            let mut keys: Vec<Vec<u8>> = (0..count).map(|_| bytes(g, MAX_KEY_BYTES)).collect();
            keys.sort();
            keys.dedup();
            let node = if bool::arbitrary(g) {
                let mut entries = Vec::new();
                let mut size = 0;
                for key in keys {
                    let value = bytes(g, MAX_VALUE_BYTES);
                    size += leaf_entry_size_bytes(&key, &value);
                    if size > PAGE_BODY_BYTES {
                        break;
                    }
                    entries.push((key, value));
                }
                Node::Leaf { entries }
            } else {
                let mut fitting = Vec::new();
                let mut size = INTERNAL_FIRST_CHILD_BYTES;
                for key in keys {
                    size += internal_key_size_bytes(&key);
                    if size > PAGE_BODY_BYTES {
                        break;
                    }
                    fitting.push(key);
                }
                let children = (0..=fitting.len()).map(|_| u32::arbitrary(g)).collect();
                Node::Internal {
                    keys: fitting,
                    children,
                }
            };
            FittingNode(node)
        }
    }

    fn round_trips(node: FittingNode, page_lsn: u64) -> bool {
        let content = PageContent::Node(node.0);
        decode_page(&encode_page(&content, page_lsn)) == Ok((page_lsn, content))
    }

    fn flipped_byte_is_corruption(node: FittingNode, index: usize, mask: u8) -> bool {
        let mut page = encode_page(&PageContent::Node(node.0), 1);
        let mask = mask.max(1);
        page[index % PAGE_SIZE_BYTES] ^= mask;
        decode_page(&page) == Err(JetError::DatabaseCorrupted)
    }

    #[test]
    fn quickcheck_node_round_trip() {
        QuickCheck::new()
            .tests(300)
            .quickcheck(round_trips as fn(FittingNode, u64) -> bool);
    }

    fn stamping_later_gives_the_same_bytes(node: FittingNode, page_lsn: u64) -> bool {
        let content = PageContent::Node(node.0);
        UnstampedPage::encode(&content).stamp(page_lsn) == encode_page(&content, page_lsn)
    }

    #[test]
    fn quickcheck_a_page_stamped_after_encoding_is_the_page_encoded_stamped() {
        QuickCheck::new()
            .tests(300)
            .quickcheck(stamping_later_gives_the_same_bytes as fn(FittingNode, u64) -> bool);
        let header = PageContent::Header(DbHeader {
            page_count: 9,
            free_list_head: 3,
            free_page_count: 2,
            catalog_root: 1,
            log_signature: 0xABCD,
            clean_shutdown: true,
        });
        let lsn = 0x0102_0304_0506_0708;
        assert_eq!(
            UnstampedPage::encode(&header).stamp(lsn),
            encode_page(&header, lsn)
        );
    }

    #[test]
    fn quickcheck_flipped_byte_detected() {
        QuickCheck::new()
            .tests(300)
            .quickcheck(flipped_byte_is_corruption as fn(FittingNode, usize, u8) -> bool);
    }
}
