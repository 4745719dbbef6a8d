//! Tests of the [`Storage`] facade across the whole stack: the B+tree against a `BTreeMap`
//! reference through a tiny cache and a reopen, the WAL rule on the files, checkpoints,
//! defrag, the catalog, error codes, and real files.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::log::{decode_all, LogRecord};
use super::page::decode_page;
use super::*;
use crate::env::io::{FileIo, Io, MemIo};

const LOG: &str = "logs/jet.log";
const CHK: &str = "jet.chk";
const DB: &str = "data/main.edb";

fn open(io: &MemIo, cache_size_pages: usize) -> Storage {
    Storage::open(io, LOG, CHK, cache_size_pages).expect("open storage")
}

fn whole_file(io: &dyn Io, path: &str) -> Vec<u8> {
    let file = io.open(path).expect("open");
    let mut bytes = vec![0; file.len().expect("len") as usize];
    file.read_at(0, &mut bytes).expect("read");
    bytes
}

/// Compares every read path of the tree with the reference map.
fn assert_matches_model(
    storage: &mut Storage,
    file: FileId,
    root: PageNumber,
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
) {
    let expected: Vec<(Vec<u8>, Vec<u8>)> =
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(storage.scan(file, root).expect("scan"), expected);
    // Forward and backward walks by next/prev reproduce the scan.
    let mut forward = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    while let Some(entry) = storage
        .next_after(file, root, cursor.as_deref())
        .expect("next")
    {
        cursor = Some(entry.0.clone());
        forward.push(entry);
        assert!(forward.len() <= expected.len());
    }
    assert_eq!(forward, expected);
    let mut backward = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    while let Some(entry) = storage
        .prev_before(file, root, cursor.as_deref())
        .expect("prev")
    {
        cursor = Some(entry.0.clone());
        backward.push(entry);
        assert!(backward.len() <= expected.len());
    }
    backward.reverse();
    assert_eq!(backward, expected);
    storage.verify_database(file).expect("page accounting");
}

#[test]
fn storage_can_live_behind_the_instance_mutex() {
    // The layer above keeps Storage in a shared instance; it must be Send + Sync.
    fn shareable<T: Send + Sync>() {}
    shareable::<Storage>();
}

#[test]
fn create_table_put_get_remove_and_errors() {
    // Goal: the basic facade calls work and every documented error code comes back.
    let io = MemIo::new();
    let mut storage = open(&io, 16);
    let file = storage.create_database(&io, DB).expect("create");
    assert_eq!(storage.database_path(file), Some(DB));
    assert_eq!(storage.attached(), vec![(file, DB.to_owned())]);
    assert_eq!(
        storage.create_database(&io, DB),
        Err(JetError::DatabaseDuplicate)
    );
    assert_eq!(
        storage.attach_database(&io, DB),
        Err(JetError::DatabaseDuplicate)
    );
    assert_eq!(
        storage.attach_database(&io, "missing.edb"),
        Err(JetError::FileNotFound)
    );

    let root = storage.create_table(file, "people").expect("create table");
    assert_eq!(storage.table_root(file, "people"), Ok(Some(root)));
    assert_eq!(storage.table_root(file, "nobody"), Ok(None));
    assert_eq!(
        storage.create_table(file, "people"),
        Err(JetError::TableDuplicate)
    );
    assert_eq!(storage.create_table(file, ""), Err(JetError::InvalidName));
    assert_eq!(
        storage.delete_table(file, "nobody"),
        Err(JetError::ObjectNotFound)
    );

    assert_eq!(storage.put(file, root, b"ada", b"1815"), Ok(None));
    assert_eq!(
        storage.put(file, root, b"ada", b"lovelace"),
        Ok(Some(b"1815".to_vec()))
    );
    assert_eq!(
        storage.get(file, root, b"ada"),
        Ok(Some(b"lovelace".to_vec()))
    );
    assert_eq!(storage.get(file, root, b"bob"), Ok(None));
    assert_eq!(storage.remove(file, root, b"bob"), Ok(None));
    assert_eq!(
        storage.remove(file, root, b"ada"),
        Ok(Some(b"lovelace".to_vec()))
    );
    assert_eq!(storage.get(file, root, b"ada"), Ok(None));

    // Oversize input is refused before anything changes.
    let tip_lsn = storage.tip_lsn();
    let long_key = vec![1u8; MAX_KEY_BYTES + 1];
    let long_value = vec![1u8; MAX_VALUE_BYTES + 1];
    assert_eq!(
        storage.put(file, root, &long_key, b"v"),
        Err(JetError::RecordTooBig)
    );
    assert_eq!(
        storage.put(file, root, b"k", &long_value),
        Err(JetError::RecordTooBig)
    );
    assert_eq!(storage.tip_lsn(), tip_lsn, "a refused put logs nothing");
    assert_eq!(
        storage.put(file, root, &[1u8; MAX_KEY_BYTES], &[2u8; MAX_VALUE_BYTES]),
        Ok(None)
    );

    let unknown = FileId(999);
    assert_eq!(
        storage.get(unknown, root, b"k"),
        Err(JetError::InvalidDatabaseId)
    );
    assert_eq!(
        storage.detach_database(unknown),
        Err(JetError::InvalidDatabaseId)
    );
    // A root that is not a table (the header, past the end) is not found.
    assert_eq!(storage.get(file, 0, b"k"), Err(JetError::ObjectNotFound));
    assert_eq!(storage.get(file, 5000, b"k"), Err(JetError::ObjectNotFound));
    assert_eq!(
        storage.put(file, database::CATALOG_ROOT_PAGE, b"k", b"v"),
        Err(JetError::ObjectNotFound)
    );
    assert_eq!(
        storage.append_log(LogRecord::PageImages {
            file,
            images: vec![(1, vec![0; PAGE_SIZE_BYTES])],
        }),
        Err(JetError::InvalidParameter)
    );
    storage.shutdown_clean().expect("shutdown");
}

#[test]
fn deep_tree_matches_btreemap_with_a_tiny_cache() {
    // Goal: max-size keys make internal nodes split too (height >= 3) while an 8-page cache
    // evicts constantly; every read path agrees with the reference throughout.
    let io = MemIo::new();
    let mut storage = open(&io, MIN_CACHE_SIZE_PAGES);
    let file = storage.create_database(&io, DB).expect("create");
    let root = storage.create_table(file, "wide").expect("table");
    let mut model = BTreeMap::new();
    let key_of = |i: u32| {
        let mut key = vec![b'k'; MAX_KEY_BYTES];
        // Spread the order: a permutation of 0..600 by a multiplier coprime to it.
        key[..4].copy_from_slice(&((i * 7919) % 600).to_be_bytes());
        key
    };
    for i in 0..600u32 {
        let value = vec![(i % 251) as u8; 200 + (i as usize % 300)];
        let previous = storage.put(file, root, &key_of(i), &value).expect("put");
        assert_eq!(previous, model.insert(key_of(i), value));
    }
    for i in (0..600u32).step_by(3) {
        let removed = storage.remove(file, root, &key_of(i)).expect("remove");
        assert_eq!(removed, model.remove(&key_of(i)));
    }
    assert_matches_model(&mut storage, file, root, &model);
    // Height: root -> internal -> internal -> leaf.
    let height_levels = storage
        .with_pager(file, |pager| {
            let mut node = pager.read_root(root)?;
            let mut height_levels = 1;
            while let page::Node::Internal { children, .. } = node {
                node = pager.read_node(children[0])?;
                height_levels += 1;
            }
            Ok(height_levels)
        })
        .expect("walk the leftmost path");
    assert!(height_levels >= 3, "height {height_levels}");
    assert!(storage.stats().evictions > 0);
    assert!(storage.stats().pages_read > 0);
}

#[test]
fn neighbours_skip_empty_leaves() {
    // Goal: after a whole key range is deleted (leaving empty leaves behind, since deletes
    // never merge), next/prev from inside or beside the hole land on the entries around it.
    let io = MemIo::new();
    let mut storage = open(&io, MIN_CACHE_SIZE_PAGES);
    let file = storage.create_database(&io, DB).expect("create");
    let root = storage.create_table(file, "t").expect("table");
    let key = |i: u32| format!("{i:05}").into_bytes();
    for i in 0..400u32 {
        storage.put(file, root, &key(i), &[4; 300]).expect("put");
    }
    for i in 100..300u32 {
        storage.remove(file, root, &key(i)).expect("remove");
    }
    let next = storage
        .next_after(file, root, Some(&key(99)))
        .expect("next");
    assert_eq!(next.map(|(k, _)| k), Some(key(300)));
    let next = storage
        .next_after(file, root, Some(&key(150)))
        .expect("next");
    assert_eq!(next.map(|(k, _)| k), Some(key(300)));
    let prev = storage
        .prev_before(file, root, Some(&key(300)))
        .expect("prev");
    assert_eq!(prev.map(|(k, _)| k), Some(key(99)));
    let prev = storage
        .prev_before(file, root, Some(&key(250)))
        .expect("prev");
    assert_eq!(prev.map(|(k, _)| k), Some(key(99)));
    for i in (0..100u32).chain(300..400) {
        storage.remove(file, root, &key(i)).expect("remove");
    }
    assert_eq!(storage.next_after(file, root, None), Ok(None));
    assert_eq!(storage.prev_before(file, root, None), Ok(None));
    assert!(
        storage.page_count(file).expect("pages") > 40,
        "the empty leaves are still there"
    );
}

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    RemoveExisting(prop::sample::Index),
    Get(Vec<u8>),
    Next(Option<Vec<u8>>),
    Prev(Option<Vec<u8>>),
}

fn key_strategy() -> impl Strategy<Value = Vec<u8>> {
    // Short prefixes collide often (overwrites, removes); the pad makes some keys long so
    // leaves and internal nodes fill fast.
    (
        prop::collection::vec(0u8..4, 0..5),
        prop::sample::select(vec![0usize, 40, 120]),
    )
        .prop_map(|(mut key, pad)| {
            key.resize(key.len() + pad.min(MAX_KEY_BYTES - key.len()), b'.');
            key
        })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (key_strategy(), prop::collection::vec(any::<u8>(), 0..400))
            .prop_map(|(k, v)| Op::Put(k, v)),
        1 => key_strategy().prop_map(Op::Remove),
        2 => any::<prop::sample::Index>().prop_map(Op::RemoveExisting),
        1 => key_strategy().prop_map(Op::Get),
        1 => prop::option::of(key_strategy()).prop_map(Op::Next),
        1 => prop::option::of(key_strategy()).prop_map(Op::Prev),
    ]
}

fn apply(
    storage: &mut Storage,
    file: FileId,
    root: PageNumber,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    op: &Op,
) {
    match op {
        Op::Put(key, value) => assert_eq!(
            storage.put(file, root, key, value).expect("put"),
            model.insert(key.clone(), value.clone())
        ),
        Op::Remove(key) => assert_eq!(
            storage.remove(file, root, key).expect("remove"),
            model.remove(key)
        ),
        Op::RemoveExisting(index) => {
            if model.is_empty() {
                return;
            }
            let key = model
                .keys()
                .nth(index.index(model.len()))
                .cloned()
                .expect("key");
            assert_eq!(
                storage.remove(file, root, &key).expect("remove"),
                model.remove(&key)
            );
        }
        Op::Get(key) => assert_eq!(
            storage.get(file, root, key).expect("get"),
            model.get(key).cloned()
        ),
        Op::Next(key) => {
            let expected = match key {
                None => model.iter().next(),
                Some(key) => model
                    .range::<Vec<u8>, _>((
                        std::ops::Bound::Excluded(key.clone()),
                        std::ops::Bound::Unbounded,
                    ))
                    .next(),
            };
            assert_eq!(
                storage
                    .next_after(file, root, key.as_deref())
                    .expect("next"),
                expected.map(|(k, v)| (k.clone(), v.clone()))
            );
        }
        Op::Prev(key) => {
            let expected = match key {
                None => model.iter().next_back(),
                Some(key) => model.range::<Vec<u8>, _>(..key.clone()).next_back(),
            };
            assert_eq!(
                storage
                    .prev_before(file, root, key.as_deref())
                    .expect("prev"),
                expected.map(|(k, v)| (k.clone(), v.clone()))
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Goal: random operation sequences agree with a BTreeMap through an 8-page cache, after
    /// defrag, and after a clean shutdown and reopen from the same files.
    #[test]
    fn btree_matches_btreemap_and_survives_reopen(
        ops in prop::collection::vec(op_strategy(), 1..160),
        more_ops in prop::collection::vec(op_strategy(), 0..40),
    ) {
        let io = MemIo::new();
        let mut storage = open(&io, MIN_CACHE_SIZE_PAGES);
        let file = storage.create_database(&io, DB).expect("create");
        let root = storage.create_table(file, "t").expect("table");
        let mut model = BTreeMap::new();
        for op in &ops {
            apply(&mut storage, file, root, &mut model, op);
        }
        assert_matches_model(&mut storage, file, root, &model);
        storage.shutdown_clean().expect("shutdown");

        let mut storage = open(&io, MIN_CACHE_SIZE_PAGES);
        let file = storage.attach_database(&io, DB).expect("attach");
        prop_assert_eq!(storage.table_root(file, "t").expect("root"), Some(root));
        assert_matches_model(&mut storage, file, root, &model);
        for op in &more_ops {
            apply(&mut storage, file, root, &mut model, op);
        }
        // Defrag to completion keeps the content.
        let mut steps = 0;
        while storage.defrag_step(file).expect("defrag").is_some() {
            steps += 1;
            prop_assert!(steps < 1000);
        }
        assert_matches_model(&mut storage, file, root, &model);
    }
}

#[test]
fn every_page_on_disk_is_a_logged_image() {
    // Goal: the WAL rule, checked on the files themselves: after heavy eviction, each page in
    // the database file carries a page LSN below the durable log's end, and the log holds a
    // PageImages record at exactly that LSN with the same bytes for that page.
    let io = MemIo::new();
    let mut storage = open(&io, MIN_CACHE_SIZE_PAGES);
    let file = storage.create_database(&io, DB).expect("create");
    let root = storage.create_table(file, "t").expect("table");
    for i in 0..300u32 {
        let key = format!("key{:05}", (i * 37) % 300);
        storage
            .put(file, root, key.as_bytes(), &[i as u8; 300])
            .expect("put");
    }
    assert!(storage.stats().evictions > 0);
    assert!(storage.dirty_page_count() > 0);
    let flushed_lsn = storage.flushed_lsn();

    let log_bytes = whole_file(&io, LOG);
    assert_eq!(log_bytes.len() as u64, flushed_lsn);
    let (records, _) = decode_all(&log_bytes);
    let by_lsn: BTreeMap<Lsn, LogRecord> = records.into_iter().collect();
    let db_bytes = whole_file(&io, DB);
    assert_eq!(db_bytes.len() % PAGE_SIZE_BYTES, 0);
    let mut pages_checked = 0;
    for (index, page_bytes) in db_bytes.chunks(PAGE_SIZE_BYTES).enumerate() {
        if page_bytes.iter().all(|&byte| byte == 0) {
            // A hole: a later page was written back while this one is still only cached.
            continue;
        }
        let (page_lsn, _) = decode_page(page_bytes).expect("valid page on disk");
        assert!(page_lsn < flushed_lsn, "page {index} is ahead of the log");
        match by_lsn.get(&page_lsn) {
            Some(LogRecord::PageImages {
                file: logged_file,
                images,
            }) => {
                assert_eq!(*logged_file, file);
                let image = images.iter().find(|(page, _)| *page as usize == index);
                assert_eq!(image.map(|(_, image)| image.as_slice()), Some(page_bytes));
            }
            other => panic!("page {index}: no image at LSN {page_lsn}: {other:?}"),
        }
        pages_checked += 1;
    }
    assert!(pages_checked > 10);
}

#[test]
fn flush_to_depth_zero_brings_the_checkpoint_to_the_tip() {
    // Goal: dirty pages make the checkpoint lag; a bounded flush reduces the depth to the
    // bound; depth 0 writes everything and persists a checkpoint at the log tip.
    let io = MemIo::new();
    let mut storage = open(&io, 64);
    let file = storage.create_database(&io, DB).expect("create");
    assert_eq!(storage.checkpoint_depth_bytes(), 0, "creation is flushed");
    let root = storage.create_table(file, "t").expect("table");
    for i in 0..200u32 {
        storage
            .put(file, root, format!("{i:04}").as_bytes(), &[7; 100])
            .expect("put");
    }
    storage
        .append_log(LogRecord::Begin { txn: 1 })
        .expect("append");
    let dirty_before = storage.dirty_page_count();
    let depth_before = storage.checkpoint_depth_bytes();
    assert!(dirty_before > 3 && depth_before > 0);

    let half = depth_before / 2;
    let report = storage.flush_to_depth(half).expect("flush");
    assert!(report.pages_written > 0 && report.pages_written < dirty_before);
    assert!(report.checkpoint_depth_bytes_after <= half);
    assert!(report.checkpoint_lsn_after > report.checkpoint_lsn_before);

    let report = storage.flush_to_depth(0).expect("flush");
    assert_eq!(storage.dirty_page_count(), 0);
    assert_eq!(storage.checkpoint_depth_bytes(), 0);
    assert_eq!(report.checkpoint_lsn_after, storage.tip_lsn());
    let persisted = storage.persisted_checkpoint().expect("persisted").clone();
    assert_eq!(persisted.checkpoint_lsn, storage.tip_lsn());
    assert_eq!(persisted.attached, vec![(file, DB.to_owned())]);
    assert!(storage.flushed_lsn() >= persisted.checkpoint_lsn);
    assert_eq!(storage.stats().checkpoints_written, 2);

    // Nothing dirty: another flush writes nothing and stays at the tip.
    let report = storage.flush_to_depth(0).expect("flush");
    assert_eq!(report.pages_written, 0);
    storage.shutdown_clean().expect("shutdown");
    let reopened = open(&io, 8);
    assert_eq!(
        reopened.persisted_checkpoint().map(|c| c.checkpoint_lsn),
        Some(reopened.tip_lsn())
    );
}

#[test]
fn defrag_merges_under_full_leaves_and_frees_pages() {
    // Goal: after deleting most of a table, defrag steps merge its leaves until nothing is
    // left to merge; the data is intact and far fewer pages are in use.
    let io = MemIo::new();
    let mut storage = open(&io, 32);
    let file = storage.create_database(&io, DB).expect("create");
    let root = storage.create_table(file, "big").expect("table");
    let other = storage.create_table(file, "small").expect("table");
    storage.put(file, other, b"only", b"entry").expect("put");
    let mut model = BTreeMap::new();
    for i in 0..1500u32 {
        let key = format!("row{:06}", (i * 7) % 1500).into_bytes();
        let value = vec![(i % 200) as u8; 150];
        storage.put(file, root, &key, &value).expect("put");
        model.insert(key, value);
    }
    let used_pages_full =
        storage.page_count(file).expect("pages") - storage.free_page_count(file).expect("free");
    let keys: Vec<Vec<u8>> = model.keys().cloned().collect();
    for (index, key) in keys.iter().enumerate() {
        if index % 20 != 0 {
            storage.remove(file, root, key).expect("remove");
            model.remove(key);
        }
    }
    let used_pages_before = used_pages_full; // deletes free nothing
    assert_eq!(
        storage.page_count(file).expect("pages") - storage.free_page_count(file).expect("free"),
        used_pages_before
    );

    let mut steps = 0u64;
    let mut pages_freed = 0u64;
    let mut entries_moved = 0u64;
    while let Some(report) = storage.defrag_step(file).expect("defrag") {
        assert_eq!(report.table, "big");
        assert!(report.pages_freed >= 1);
        pages_freed += report.pages_freed;
        entries_moved += report.entries_moved;
        steps += 1;
        assert!(steps < 10_000);
    }
    let used_pages_after =
        storage.page_count(file).expect("pages") - storage.free_page_count(file).expect("free");
    assert_matches_model(&mut storage, file, root, &model);
    assert_eq!(
        storage.get(file, other, b"only"),
        Ok(Some(b"entry".to_vec()))
    );
    assert_eq!(used_pages_before - used_pages_after, pages_freed);
    // 75 entries of 163 bytes: merges stop at half a page (~6 entries), so ~13 leaves plus
    // the header, the catalog, two roots. The table started with ~140 pages.
    assert!(used_pages_before >= 130, "before: {used_pages_before}");
    assert!(used_pages_after <= 20, "after: {used_pages_after}");
    assert!(entries_moved > 0 && steps > 100, "steps {steps}");

    // Freed pages are reused before the file grows.
    let page_count = storage.page_count(file).expect("pages");
    for i in 0..200u32 {
        storage
            .put(file, root, format!("new{i:05}").as_bytes(), &[1; 150])
            .expect("put");
    }
    assert_eq!(storage.page_count(file).expect("pages"), page_count);
    storage.verify_database(file).expect("accounting");
}

#[test]
fn delete_table_frees_every_page() {
    let io = MemIo::new();
    let mut storage = open(&io, 16);
    let file = storage.create_database(&io, DB).expect("create");
    let keep = storage.create_table(file, "keep").expect("table");
    let doomed = storage.create_table(file, "doomed").expect("table");
    for i in 0..300u32 {
        storage
            .put(file, doomed, format!("{i:05}").as_bytes(), &[3; 200])
            .expect("put");
    }
    storage.put(file, keep, b"k", b"v").expect("put");
    let pages = storage.page_count(file).expect("pages");
    storage.delete_table(file, "doomed").expect("delete");
    assert_eq!(storage.table_names(file), Ok(vec!["keep".to_owned()]));
    // Everything but the header, the catalog and "keep"'s root is free.
    assert_eq!(storage.free_page_count(file), Ok(pages - 3));
    assert_eq!(
        storage.get(file, doomed, b"00001"),
        Err(JetError::ObjectNotFound)
    );
    storage.verify_database(file).expect("accounting");
    let again = storage.create_table(file, "doomed").expect("recreate");
    assert!(u64::from(again) < pages, "a freed page is reused");
    assert_eq!(storage.get(file, keep, b"k"), Ok(Some(b"v".to_vec())));
}

#[test]
fn catalog_holds_many_tables_across_a_reopen() {
    // Goal: enough tables to split the catalog tree; names come back sorted after reopen.
    let io = MemIo::new();
    let mut storage = open(&io, MIN_CACHE_SIZE_PAGES);
    let file = storage.create_database(&io, DB).expect("create");
    let mut roots = BTreeMap::new();
    for i in 0..120u32 {
        let name = format!("table_{:03}_{}", (i * 13) % 120, "x".repeat(60));
        let root = storage.create_table(file, &name).expect("table");
        storage
            .put(file, root, b"id", &i.to_le_bytes())
            .expect("put");
        roots.insert(name, root);
    }
    storage.shutdown_clean().expect("shutdown");
    let mut storage = open(&io, MIN_CACHE_SIZE_PAGES);
    let file = storage.attach_database(&io, DB).expect("attach");
    let names = storage.table_names(file).expect("names");
    assert_eq!(names, roots.keys().cloned().collect::<Vec<_>>());
    for (name, root) in &roots {
        assert_eq!(storage.table_root(file, name), Ok(Some(*root)));
        assert!(storage.get(file, *root, b"id").expect("get").is_some());
    }
    storage.verify_database(file).expect("accounting");
}

#[test]
fn corruption_on_disk_is_reported_not_panicked() {
    // Goal: a flipped byte in a table page, or a damaged header, surfaces as
    // DatabaseCorrupted on the next read from disk.
    let io = MemIo::new();
    let mut storage = open(&io, 16);
    let file = storage.create_database(&io, DB).expect("create");
    let root = storage.create_table(file, "t").expect("table");
    storage.put(file, root, b"k", b"v").expect("put");
    storage.shutdown_clean().expect("shutdown");

    let db = io.open(DB).expect("open");
    let offset = u64::from(root) * PAGE_SIZE_BYTES as u64 + 20;
    let mut byte = [0u8];
    db.read_at(offset, &mut byte).expect("read");
    db.write_at(offset, &[byte[0] ^ 0x10]).expect("write");
    let mut storage = open(&io, 16);
    let file = storage
        .attach_database(&io, DB)
        .expect("attach (header is fine)");
    assert_eq!(
        storage.get(file, root, b"k"),
        Err(JetError::DatabaseCorrupted)
    );
    storage.detach_database(file).expect("detach");
    assert!(storage.attached().is_empty());

    db.write_at(40, &[0xAB]).expect("damage header");
    assert_eq!(
        storage.attach_database(&io, DB),
        Err(JetError::DatabaseCorrupted)
    );
    let short = io.create("short.edb").expect("create");
    short.write_at(0, &[1, 2, 3]).expect("write");
    assert_eq!(
        storage.attach_database(&io, "short.edb"),
        Err(JetError::DatabaseCorrupted)
    );
    assert!(storage.attached().is_empty());
}

#[test]
fn reopen_continues_the_log_and_file_ids() {
    // Goal: a reopened Storage appends after the old log and never reuses a FileId the log
    // already mentions; detach and reattach keep the data.
    let io = MemIo::new();
    let mut storage = open(&io, 16);
    let first = storage.create_database(&io, DB).expect("create");
    let root = storage.create_table(first, "t").expect("table");
    storage.put(first, root, b"a", b"1").expect("put");
    storage.detach_database(first).expect("detach");
    let again = storage.attach_database(&io, DB).expect("reattach");
    assert_ne!(again, first);
    assert_eq!(storage.get(again, root, b"a"), Ok(Some(b"1".to_vec())));
    let tip_lsn = storage.tip_lsn();
    storage.shutdown_clean().expect("shutdown");

    let mut storage = open(&io, 16);
    assert!(storage.tip_lsn() > tip_lsn, "continues after CleanShutdown");
    let (records, valid_len) = decode_all(&whole_file(&io, LOG));
    assert_eq!(valid_len, storage.tip_lsn());
    assert_eq!(
        records.last().map(|(_, r)| r),
        Some(&LogRecord::CleanShutdown)
    );
    let third = storage.attach_database(&io, DB).expect("attach");
    assert!(third > again);
    let tip_lsn = storage.tip_lsn();
    assert!(tip_lsn > valid_len, "attach is logged");
    let lsn = storage
        .append_log(LogRecord::Commit {
            txn: 1,
            commit_ts: 2,
        })
        .expect("append");
    assert_eq!(lsn, tip_lsn);
    storage.flush_log().expect("flush");
    assert_eq!(storage.flushed_lsn(), storage.tip_lsn());
}

#[test]
fn shrinking_the_cache_writes_back_dirty_pages() {
    let io = MemIo::new();
    let mut storage = open(&io, 128);
    let file = storage.create_database(&io, DB).expect("create");
    let root = storage.create_table(file, "t").expect("table");
    for i in 0..200u32 {
        storage
            .put(file, root, format!("{i:04}").as_bytes(), &[9; 300])
            .expect("put");
    }
    let dirty = storage.dirty_page_count();
    assert!(dirty > MIN_CACHE_SIZE_PAGES as u64);
    storage.set_cache_size_pages(0).expect("shrink");
    assert_eq!(storage.cache_size_pages(), MIN_CACHE_SIZE_PAGES);
    assert!(storage.dirty_page_count() <= MIN_CACHE_SIZE_PAGES as u64);
    assert!(storage.stats().pages_written >= dirty - MIN_CACHE_SIZE_PAGES as u64);
    assert_eq!(storage.scan(file, root).expect("scan").len(), 200);
}

#[test]
fn too_many_attached_databases() {
    let io = MemIo::new();
    let mut storage = open(&io, 16);
    for i in 0..MAX_ATTACHED_DATABASES {
        storage
            .create_database(&io, &format!("db{i}.edb"))
            .expect("create");
    }
    assert_eq!(
        storage.create_database(&io, "one-too-many.edb"),
        Err(JetError::TooManyAttachedDatabases)
    );
    assert!(!io.exists("one-too-many.edb"));
}

#[test]
fn real_files_round_trip() {
    // Goal: the same stack works on the real filesystem through FileIo.
    let root_dir = std::env::temp_dir().join(format!("jetsim-storage-test-{}", std::process::id()));
    let io = FileIo::new(&root_dir);
    let result = std::panic::catch_unwind(|| {
        let mut storage = Storage::open(&io, LOG, CHK, MIN_CACHE_SIZE_PAGES).expect("open");
        let file = storage.create_database(&io, DB).expect("create");
        let root = storage.create_table(file, "t").expect("table");
        for i in 0..300u32 {
            storage
                .put(file, root, format!("{i:05}").as_bytes(), &[5; 120])
                .expect("put");
        }
        storage.shutdown_clean().expect("shutdown");
        let mut storage = Storage::open(&io, LOG, CHK, MIN_CACHE_SIZE_PAGES).expect("reopen");
        let file = storage.attach_database(&io, DB).expect("attach");
        let entries = storage.scan(file, root).expect("scan");
        assert_eq!(entries.len(), 300);
        assert_eq!(entries[17].0, b"00017".to_vec());
        storage.verify_database(file).expect("accounting");
        storage.shutdown_clean().expect("shutdown");
    });
    let _ = std::fs::remove_dir_all(&root_dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn a_checkpoint_never_passes_an_unsynced_eviction() {
    // Regression (found writing recovery): evictions write pages without syncing, and the
    // checkpoint (oldest first-dirty LSN of the pages still dirty) then moved past them; a
    // crash lost those writes and recovery started after their images. Every checkpoint now
    // syncs every file with unsynced page writes first.
    let io = MemIo::new();
    let mut storage = open(&io, MIN_CACHE_SIZE_PAGES);
    let file = storage.create_database(&io, DB).expect("create");
    let root = storage.create_table(file, "t").expect("table");
    let mut model = BTreeMap::new();
    for i in 0..300u32 {
        let key = format!("{i:05}").into_bytes();
        storage.put(file, root, &key, &[7; 100]).expect("put");
    }
    storage.flush_to_depth(0).expect("everything clean");
    // Same-size updates in key order: no allocation (the header stays clean), and each leaf
    // is evicted (written, not synced) once the tiny cache fills.
    let evictions_before = storage.stats().evictions;
    for i in 0..300u32 {
        let key = format!("{i:05}").into_bytes();
        storage.put(file, root, &key, &[8; 100]).expect("put");
        model.insert(key, vec![8; 100]);
    }
    assert!(storage.stats().evictions > evictions_before);
    storage.flush_log().expect("flush");
    // A shallow flush writes nothing but persists a checkpoint past the evicted pages.
    let report = storage.flush_to_depth(u64::MAX / 2).expect("checkpoint");
    assert_eq!(report.pages_written, 0);
    drop(storage);
    io.crash();
    let mut storage = open(&io, MIN_CACHE_SIZE_PAGES);
    let file = storage.attach_database(&io, DB).expect("attach");
    assert_matches_model(&mut storage, file, root, &model);
}

#[test]
fn a_checkpoint_keeps_the_undo_point_until_the_end_record_is_durable() {
    // Goal: a transaction whose level-1 Rollback (or Commit) is appended but not flushed is
    // still open to a crash, so a checkpoint persisted then keeps its Undo records in the
    // loser scan. The stop's full flush writes the transaction's delete to the file; the
    // rollback's compensation and end record stay in the log buffer; a background checkpoint
    // within its depth bound needs no page write and no log flush. Recovery must undo the
    // delete (found by `jetsim replay 167 --crash-at 41`).
    let io = MemIo::new();
    let mut storage = open(&io, 16);
    let file = storage.create_database(&io, DB).expect("create");
    let root = storage.create_table(file, "t").expect("table");
    storage.put(file, root, b"k", b"committed").expect("put");
    storage.flush_log().expect("flush");

    let first_undo_lsn = storage
        .append_log(LogRecord::Undo {
            txn: 1,
            file,
            table_root: root,
            key: b"k".to_vec(),
            before: Some(b"committed".to_vec()),
        })
        .expect("undo");
    storage.remove(file, root, b"k").expect("remove");
    storage.flush_to_depth(0).expect("the stop's flush");

    storage
        .put(file, root, b"k", b"committed")
        .expect("compensate");
    storage
        .append_log(LogRecord::Rollback {
            txn: 1,
            level: 1,
            undone: 1,
        })
        .expect("rollback");
    let flushed_lsn = storage.flushed_lsn();
    let report = storage.flush_to_depth(1 << 20).expect("checkpoint");
    assert_eq!(report.pages_written, 0);
    assert_eq!(
        storage.flushed_lsn(),
        flushed_lsn,
        "the Rollback record is not durable"
    );
    let persisted = storage.persisted_checkpoint().expect("persisted").clone();
    assert!(
        persisted.undo_lsn <= first_undo_lsn,
        "the undo point {} passed the open transaction's first Undo record {first_undo_lsn}",
        persisted.undo_lsn
    );

    drop(storage);
    io.crash();
    let mut storage = open(&io, 16);
    assert_eq!(storage.recovery_report().transactions_undone, 1);
    let file = storage.attach_database(&io, DB).expect("attach");
    assert_eq!(
        storage.get(file, root, b"k"),
        Ok(Some(b"committed".to_vec()))
    );

    // Once the end record is durable, the undo point moves on to the tip.
    let undo_lsn = storage
        .append_log(LogRecord::Undo {
            txn: 2,
            file,
            table_root: root,
            key: b"k".to_vec(),
            before: Some(b"committed".to_vec()),
        })
        .expect("undo");
    storage
        .append_log(LogRecord::Commit {
            txn: 2,
            commit_ts: 1,
        })
        .expect("commit");
    assert_eq!(storage.undo_lsn(), undo_lsn);
    storage.flush_log().expect("flush");
    assert_eq!(storage.undo_lsn(), storage.tip_lsn());
}

/// An [`Io`] over [`MemIo`] whose data files' syncs fail while `fail_data_syncs` is set.
struct DataSyncFailIo {
    inner: MemIo,
    fail_data_syncs: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

struct DataSyncFailFile {
    inner: Box<dyn crate::env::io::IoFile>,
    data_file: bool,
    fail_data_syncs: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl DataSyncFailIo {
    fn wrap(
        &self,
        path: &str,
        inner: Box<dyn crate::env::io::IoFile>,
    ) -> Box<dyn crate::env::io::IoFile> {
        Box::new(DataSyncFailFile {
            inner,
            data_file: path == DB,
            fail_data_syncs: std::sync::Arc::clone(&self.fail_data_syncs),
        })
    }
}

impl Io for DataSyncFailIo {
    fn create(&self, path: &str) -> std::io::Result<Box<dyn crate::env::io::IoFile>> {
        let inner = self.inner.create(path)?;
        Ok(self.wrap(path, inner))
    }
    fn open(&self, path: &str) -> std::io::Result<Box<dyn crate::env::io::IoFile>> {
        let inner = self.inner.open(path)?;
        Ok(self.wrap(path, inner))
    }
    fn remove(&self, path: &str) -> std::io::Result<()> {
        self.inner.remove(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.inner.exists(path)
    }
}

impl crate::env::io::IoFile for DataSyncFailFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.inner.write_at(offset, data)
    }
    fn sync(&self) -> std::io::Result<()> {
        if self.data_file
            && self
                .fail_data_syncs
                .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(std::io::Error::other("injected data sync failure"));
        }
        self.inner.sync()
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
}

#[test]
fn a_checkpoint_persist_whose_data_sync_fails_stops_every_later_checkpoint_at_once() {
    // Goal: the background's checkpoint persist takes the unsynced data files' sync over
    // from every later checkpoint. Found by the fault campaign (`replay 946 --faults`): a
    // stop's room write-back wrote a page without a sync, the background persist took the
    // file and its sync failed, and the stop's checkpoint, made under the exclusive latch
    // before the persist's end was accounted, found nothing unsynced and passed the page,
    // which the crash lost. The failed sync must make the storage fail-stop at once.
    let io = DataSyncFailIo {
        inner: MemIo::new(),
        fail_data_syncs: std::sync::Arc::default(),
    };
    let mut storage = Storage::open(&io, LOG, CHK, 64).expect("open storage");
    let file = storage.create_database(&io, DB).expect("create");
    let root = storage.create_table(file, "t").expect("table");
    for i in 0..20u32 {
        storage
            .put(file, root, format!("{i:04}").as_bytes(), &[7; 100])
            .expect("put");
    }
    storage.flush_log().expect("log durable");
    let unlatched = crate::runtime::sync::unlatched::<crate::runtime::StdRuntime>();
    // A room write-back: its pages are written, not synced, and clean once it ends.
    let WriteBackStart::Batch(batch) = storage.begin_room_write_back(64).expect("start") else {
        panic!("dirty pages whose log is durable make a batch");
    };
    let written = batch.write_and_sync(unlatched);
    assert!(storage.finish_write_back(batch, written).expect("written") > 0);
    let persist = storage.begin_checkpoint_persist().expect("persist");
    io.fail_data_syncs
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(persist.write_and_sync(unlatched).is_err());
    io.fail_data_syncs
        .store(false, std::sync::atomic::Ordering::SeqCst);
    // Before the persist's end is accounted, another checkpoint (a stop's) is refused.
    assert_eq!(
        storage
            .flush_to_depth(0)
            .map(|report| report.checkpoint_lsn_after),
        Err(JetError::InstanceUnavailable)
    );
    // Its end then records the failure itself.
    let failed = storage.finish_checkpoint_persist(persist, Err(std::io::Error::other("sync")));
    assert_eq!(failed, Err(JetError::DiskIO));
    assert_eq!(
        storage.failure().map(|failure| failure.error),
        Some(JetError::DiskIO)
    );
}
