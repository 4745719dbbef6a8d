//! One database file: the header page, the free list, the catalog, and [`Pager`], the view
//! of one attached file through the buffer manager and the log that every tree operation
//! uses.
//!
//! Layout: page 0 is the header ([`DbHeader`]); page 1 is the catalog root, a B+tree from
//! table name (UTF-8) to the table's root page number (u32 LE). Table roots never move, so
//! the catalog changes only on create/delete table. Freed pages form a singly linked list
//! threaded through the free pages themselves; allocation pops it before growing the file.
//!
//! Every page change is logged first, and one tree operation is one log record: during an
//! operation [`Pager::write`] only stages the new page content (later reads in the same
//! operation see it); [`Pager::commit`] appends every staged page as one `PageImages` record,
//! stamps the images with that record's LSN and installs them as dirty frames. Staged pages
//! are not in the cache, so no eviction can write half an operation to disk, and the log
//! holds the operation whole or not at all. Without this, an eviction in the middle of a
//! split flushed the log up to the first half of it, and a crash left recovery a tree with
//! keys out of order (the engine's crash sweep found it once table creation synced the
//! log). An operation that fails is dropped uncommitted: it leaves nothing in the cache or
//! the log.
//!
//! A record write stages its operation through a pager over cached pages alone, under the
//! store latch held shared ([`Pager::open_staging`]), beside readers and other writers; the
//! pager keeps the LSN of every page it read, and the write installs its pages
//! ([`StagedPages`], [`log_and_install`]) under the store latch held exclusively only if
//! every one of those pages still has that LSN. So two writes that read the same page (a
//! leaf, or the header they both allocate from) cannot both install: the second sees the
//! first's LSN and stages again.

use std::collections::BTreeMap;

use super::btree;
use super::buffer_manager::{BufferManager, FrameKey, MissPolicy};
use super::log::{Log, LogRecord};
use super::page::{decode_page, DbHeader, Node, PageContent, UnstampedPage};
use super::{FileId, Lsn, PageNumber};
use crate::error::{JetError, JetResult};

/// The header page.
pub const HEADER_PAGE: PageNumber = 0;
/// The catalog's root page (fixed, like every tree root).
pub const CATALOG_ROOT_PAGE: PageNumber = 1;
/// The catalog's name in defrag reports (ESE's catalog table is MSysObjects).
pub const CATALOG_NAME: &str = "MSysObjects";

/// How a pager reaches the cache.
enum Frames<'a> {
    /// Under the exclusive instance latch: reads may install (and evict), writes commit.
    Exclusive {
        buffers: &'a mut BufferManager,
        log: &'a mut Log,
    },
    /// Under the shared instance latch: cached pages only. The first page that is not cached
    /// is recorded in `missed` and the read fails with `OutOfBuffers`; the caller reads it
    /// with no latch held and runs the operation again. Such a pager never writes.
    Cached {
        buffers: &'a BufferManager,
        missed: &'a mut Option<FrameKey>,
    },
}

impl Frames<'_> {
    fn read(&mut self, file: FileId, page: PageNumber) -> JetResult<&[u8]> {
        match self {
            Frames::Exclusive { buffers, log } => buffers.read(file, page, log),
            Frames::Cached { buffers, missed } => match buffers.read_cached(file, page) {
                Some(bytes) => Ok(bytes),
                None if !buffers.has_file(file) => Err(JetError::InvalidDatabaseId),
                None => {
                    **missed = Some((file, page));
                    Err(JetError::OutOfBuffers)
                }
            },
        }
    }

    fn marks(&self) -> &crate::marks::Marks {
        &self.buffers().marks
    }

    fn buffers(&self) -> &BufferManager {
        match self {
            Frames::Exclusive { buffers, .. } => buffers,
            Frames::Cached { buffers, .. } => buffers,
        }
    }
}

/// One attached file seen through the cache and the log, for the length of one operation.
/// It caches the header for that operation and stages it on every change; nothing it
/// writes reaches the log or the cache before [`Pager::commit`].
pub struct Pager<'a> {
    frames: Frames<'a>,
    file: FileId,
    header: DbHeader,
    /// Pages this operation changed, newest content, by page number.
    staged: BTreeMap<PageNumber, PageContent>,
    /// A staging pager's reads: page → its LSN when read (`None`: not a staging pager).
    read_lsns: Option<BTreeMap<PageNumber, Lsn>>,
    /// The staged pages in the order the operation first wrote them.
    write_order: Vec<PageNumber>,
    /// Planted bug `OperationLoggedPerPage`: log and cache every write at once.
    pub(super) log_each_page_at_once: bool,
}

/// What a record write staged under the shared store latch: its pages' new contents, and
/// the LSN each page it read had then. [`StagedPages::is_current`] says whether it may still
/// be installed.
#[derive(Debug)]
pub struct StagedPages {
    file: FileId,
    pages: BTreeMap<PageNumber, StagedPage>,
    read_lsns: BTreeMap<PageNumber, Lsn>,
    write_order: Vec<PageNumber>,
}

impl StagedPages {
    /// Whether every page the write read still has, in the cache, the LSN it read: then no
    /// change was installed since over anything the write saw, and its staged pages follow
    /// from the tree as it is now. A page evicted since counts as changed (its LSN is not
    /// at hand), so the write stages again.
    pub fn is_current(&self, buffers: &BufferManager) -> bool {
        self.read_lsns
            .iter()
            .all(|(&page, &lsn)| buffers.cached_page_lsn(self.file, page) == Some(lsn))
    }

    pub fn file(&self) -> FileId {
        self.file
    }

    /// The pages the install writes.
    pub fn page_numbers(&self) -> Vec<PageNumber> {
        self.pages.keys().copied().collect()
    }

    /// Encodes the staged pages, so the install under the store latch held exclusively only
    /// stamps them with the LSN of the record that logs them. For the caller to run between
    /// the plan and the install, with the store latch let go (CPU on what the write owns);
    /// an install encodes what was not.
    pub fn encode(&mut self) {
        for page in self.pages.values_mut() {
            if let StagedPage::Content(content) = page {
                let encoded = UnstampedPage::encode(content);
                *page = StagedPage::Encoded(encoded);
            }
        }
    }

    /// Logs and installs the staged pages (see [`log_and_install`]); `per_page` is the
    /// planted bug `OperationLoggedPerPage`, one record a page.
    pub fn install(
        self,
        buffers: &mut BufferManager,
        log: &mut Log,
        per_page: bool,
    ) -> JetResult<()> {
        if per_page {
            // As the operation wrote them, so an eviction between two of them (room for a
            // new page) flushes the log with the first half of a split in it.
            let mut pages = self.pages;
            for page in self.write_order {
                let staged = pages.remove(&page).expect("written pages are staged");
                let encoded = BTreeMap::from([(page, staged.encoded())]);
                log_and_install(buffers, log, self.file, encoded)?;
            }
            return Ok(());
        }
        let encoded = (self.pages.into_iter())
            .map(|(page, staged)| (page, staged.encoded()))
            .collect();
        log_and_install(buffers, log, self.file, encoded)
    }
}

/// A page a staged write changed: its content as the operation left it, or encoded
/// ([`StagedPages::encode`]).
#[derive(Debug)]
enum StagedPage {
    Content(PageContent),
    Encoded(UnstampedPage),
}

impl StagedPage {
    fn encoded(self) -> UnstampedPage {
        match self {
            StagedPage::Content(content) => UnstampedPage::encode(&content),
            StagedPage::Encoded(encoded) => encoded,
        }
    }
}

/// The staged pages of an operation, encoded.
fn encoded(staged: BTreeMap<PageNumber, PageContent>) -> BTreeMap<PageNumber, UnstampedPage> {
    staged
        .into_iter()
        .map(|(page, content)| (page, UnstampedPage::encode(&content)))
        .collect()
}

/// Logs `staged` as one `PageImages` record, then installs the images as dirty frames: the
/// end of a tree operation ([`Pager::commit`]) or of a staged write's install.
fn log_and_install(
    buffers: &mut BufferManager,
    log: &mut Log,
    file: FileId,
    staged: BTreeMap<PageNumber, UnstampedPage>,
) -> JetResult<()> {
    if staged.is_empty() {
        return Ok(());
    }
    // From the first logged change on, the operation cannot be run again: later misses
    // read under the lock.
    buffers.set_miss_policy(MissPolicy::ReadUnderLock);
    // The images carry the LSN of the record that logs them, so the LSN is taken first.
    let page_lsn = log.tip_lsn();
    let images: Vec<(PageNumber, Vec<u8>)> = staged
        .into_iter()
        .map(|(page, unstamped)| (page, unstamped.stamp(page_lsn)))
        .collect();
    let record = LogRecord::PageImages { file, images };
    let logged_lsn = log.append(&record)?;
    assert_eq!(logged_lsn, page_lsn);
    let LogRecord::PageImages { images, .. } = record else {
        unreachable!("built above")
    };
    for (page, image) in images {
        // Installing may evict and flush the log; the record is whole by now.
        buffers.write(file, page, image, page_lsn, log)?;
    }
    Ok(())
}

impl<'a> Pager<'a> {
    /// The coverage marks of the instance this pager works for.
    pub fn marks(&self) -> &crate::marks::Marks {
        self.frames.marks()
    }

    /// Planted bug `NextStopsAtLeafEnd`: a forward walk tries only the child that may hold
    /// the key.
    pub fn next_tries_one_child(&self) -> bool {
        self.frames.buffers().next_tries_one_child
    }

    /// Reads and verifies the header of an attached file.
    pub fn open(buffers: &'a mut BufferManager, log: &'a mut Log, file: FileId) -> JetResult<Self> {
        Self::open_through(Frames::Exclusive { buffers, log }, file)
    }

    /// [`Pager::open`] for a read-only operation under the shared instance latch: it reads
    /// cached pages only and records the first miss in `missed` (see [`Frames::Cached`]).
    pub fn open_cached(
        buffers: &'a BufferManager,
        missed: &'a mut Option<FrameKey>,
        file: FileId,
    ) -> JetResult<Self> {
        Self::open_through(Frames::Cached { buffers, missed }, file)
    }

    /// [`Pager::open_cached`] for a record write under the shared store latch: it reads
    /// cached pages only, keeps the LSN of each page it reads, and stages its changes for
    /// [`Pager::into_staged`] instead of committing them.
    pub fn open_staging(
        buffers: &'a BufferManager,
        missed: &'a mut Option<FrameKey>,
        file: FileId,
    ) -> JetResult<Self> {
        let mut pager = Self::open_through(Frames::Cached { buffers, missed }, file)?;
        let header_lsn = buffers
            .cached_page_lsn(file, HEADER_PAGE)
            .expect("the header was just read from the cache");
        pager.read_lsns = Some(BTreeMap::from([(HEADER_PAGE, header_lsn)]));
        Ok(pager)
    }

    /// A staging pager's operation, to install later (see [`StagedPages`]).
    pub fn into_staged(self) -> StagedPages {
        StagedPages {
            file: self.file,
            pages: (self.staged.into_iter())
                .map(|(page, content)| (page, StagedPage::Content(content)))
                .collect(),
            read_lsns: self.read_lsns.expect("a staging pager"),
            write_order: self.write_order,
        }
    }

    fn open_through(mut frames: Frames<'a>, file: FileId) -> JetResult<Self> {
        let bytes = frames.read(file, HEADER_PAGE)?;
        let header = match decode_page(bytes)?.1 {
            PageContent::Header(header) => header,
            _ => return Err(JetError::DatabaseCorrupted),
        };
        if header.catalog_root != CATALOG_ROOT_PAGE
            || header.page_count <= CATALOG_ROOT_PAGE
            || header.free_page_count >= header.page_count
        {
            return Err(JetError::DatabaseCorrupted);
        }
        Ok(Pager {
            frames,
            file,
            header,
            staged: BTreeMap::new(),
            read_lsns: None,
            write_order: Vec::new(),
            log_each_page_at_once: false,
        })
    }

    /// The cache and the log, for a change. A pager opened with [`Pager::open_cached`] serves
    /// read-only operations: a change through it is a bug in the engine, not in the caller.
    fn exclusive(&mut self) -> (&mut BufferManager, &mut Log) {
        match &mut self.frames {
            Frames::Exclusive { buffers, log } => (buffers, log),
            Frames::Cached { .. } => panic!("a pager under the shared latch changes nothing"),
        }
    }

    /// Formats a new, empty database into a file the buffer manager already knows: header
    /// and an empty catalog root, both logged.
    pub fn format(buffers: &'a mut BufferManager, log: &'a mut Log, file: FileId) -> JetResult<()> {
        let header = DbHeader {
            page_count: CATALOG_ROOT_PAGE + 1,
            free_list_head: 0,
            free_page_count: 0,
            catalog_root: CATALOG_ROOT_PAGE,
            log_signature: log.signature(),
            clean_shutdown: false,
        };
        let mut pager = Pager {
            frames: Frames::Exclusive { buffers, log },
            file,
            header,
            staged: BTreeMap::new(),
            read_lsns: None,
            write_order: Vec::new(),
            log_each_page_at_once: false,
        };
        pager.write(HEADER_PAGE, &PageContent::Header(header))?;
        pager.write_node(CATALOG_ROOT_PAGE, Node::empty_leaf())?;
        pager.commit()
    }

    pub fn header(&self) -> DbHeader {
        self.header
    }

    /// Records in the header that the database now belongs to this pager's log and is in
    /// use (not clean) until it is detached or shut down cleanly (a logged header write,
    /// committed; the caller makes it durable). Returns whether the header changed.
    pub fn stamp_owner(mut self) -> JetResult<bool> {
        let signature = self.exclusive().1.signature();
        if self.header.log_signature == signature && !self.header.clean_shutdown {
            return Ok(false);
        }
        self.header.log_signature = signature;
        self.header.clean_shutdown = false;
        self.write_header()?;
        self.commit()?;
        Ok(true)
    }

    /// Records that the file is consistent on its own: every change is (about to be) flushed
    /// and no log needs replaying into it, so another instance may attach it. Part of the
    /// caller's operation; the caller flushes and syncs the file after it.
    pub fn mark_clean(&mut self) -> JetResult<()> {
        if self.header.clean_shutdown {
            return Ok(());
        }
        self.header.clean_shutdown = true;
        self.write_header()
    }

    /// Reads and decodes a page inside the file (as this operation left it, if it changed it).
    pub fn read(&mut self, page: PageNumber) -> JetResult<PageContent> {
        if page >= self.header.page_count {
            return Err(JetError::DatabaseCorrupted);
        }
        if let Some(content) = self.staged.get(&page) {
            return Ok(content.clone());
        }
        let content = decode_page(self.frames.read(self.file, page)?)?.1;
        if let Some(read_lsns) = self.read_lsns.as_mut() {
            // The frame's LSN, which `StagedPages::is_current` compares with (a page read
            // from a file another log wrote is cached with LSN 0, whatever it stores).
            let lsn = self.frames.buffers().cached_page_lsn(self.file, page);
            read_lsns.insert(page, lsn.expect("the page was just read from the cache"));
        }
        Ok(content)
    }

    /// Reads a page that must be a tree node (any other kind is a broken pointer).
    pub fn read_node(&mut self, page: PageNumber) -> JetResult<Node> {
        if page == HEADER_PAGE {
            return Err(JetError::DatabaseCorrupted);
        }
        match self.read(page)? {
            PageContent::Node(node) => Ok(node),
            _ => Err(JetError::DatabaseCorrupted),
        }
    }

    /// Reads a tree root handed in by a caller: a page that is not a tree root (out of range,
    /// freed, the header) is `ObjectNotFound`, not corruption, because the caller chose it.
    pub fn read_root(&mut self, root: PageNumber) -> JetResult<Node> {
        if root == HEADER_PAGE || root >= self.header.page_count {
            return Err(JetError::ObjectNotFound);
        }
        match self.read(root)? {
            PageContent::Node(node) => Ok(node),
            _ => Err(JetError::ObjectNotFound),
        }
    }

    /// Stages a page's new content for [`Pager::commit`].
    pub fn write(&mut self, page: PageNumber, content: &PageContent) -> JetResult<()> {
        assert!(page < self.header.page_count, "write inside the file");
        if self.staged.insert(page, content.clone()).is_none() {
            self.write_order.push(page);
        }
        if self.log_each_page_at_once {
            return self.commit_staged();
        }
        Ok(())
    }

    /// Ends the operation: logs every staged page as one `PageImages` record, then installs
    /// the images as dirty frames. A no-op for an operation that only read.
    pub fn commit(mut self) -> JetResult<()> {
        self.commit_staged()
    }

    fn commit_staged(&mut self) -> JetResult<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let file = self.file;
        let staged = std::mem::take(&mut self.staged);
        self.write_order.clear();
        let (buffers, log) = self.exclusive();
        log_and_install(buffers, log, file, encoded(staged))
    }

    pub fn write_node(&mut self, page: PageNumber, node: Node) -> JetResult<()> {
        debug_assert!(page != HEADER_PAGE);
        self.write(page, &PageContent::Node(node))
    }

    fn write_header(&mut self) -> JetResult<()> {
        let header = self.header;
        self.write(HEADER_PAGE, &PageContent::Header(header))
    }

    /// A page for a new node: the head of the free list, or a new page at the end of the
    /// file. The caller writes it before the operation ends.
    pub fn allocate(&mut self) -> JetResult<PageNumber> {
        let page = if self.header.free_list_head != 0 {
            let page = self.header.free_list_head;
            let next_free = match self.read(page)? {
                PageContent::Free { next_free } => next_free,
                _ => return Err(JetError::DatabaseCorrupted),
            };
            if self.header.free_page_count == 0 || next_free == page {
                return Err(JetError::DatabaseCorrupted);
            }
            self.header.free_list_head = next_free;
            self.header.free_page_count -= 1;
            page
        } else {
            let page = self.header.page_count;
            self.header.page_count = page.checked_add(1).ok_or(JetError::DatabaseCorrupted)?;
            page
        };
        self.write_header()?;
        debug_assert!(page > CATALOG_ROOT_PAGE && page < self.header.page_count);
        Ok(page)
    }

    /// Puts a page on the free list.
    pub fn free(&mut self, page: PageNumber) -> JetResult<()> {
        assert!(page > CATALOG_ROOT_PAGE && page < self.header.page_count);
        let next_free = self.header.free_list_head;
        self.write(page, &PageContent::Free { next_free })?;
        self.header.free_list_head = page;
        self.header.free_page_count += 1;
        self.write_header()
    }

    /// Pages on the free list, by walking it (bounded by the page count, so a cycle in a
    /// corrupt file is reported rather than followed forever).
    pub fn walk_free_list(&mut self) -> JetResult<Vec<PageNumber>> {
        let mut pages = Vec::new();
        let mut page = self.header.free_list_head;
        while page != 0 {
            if pages.len() >= self.header.page_count as usize {
                return Err(JetError::DatabaseCorrupted);
            }
            pages.push(page);
            page = match self.read(page)? {
                PageContent::Free { next_free } => next_free,
                _ => return Err(JetError::DatabaseCorrupted),
            };
        }
        Ok(pages)
    }

    /// Checks page accounting: every page is the header, in exactly one tree (the catalog
    /// or a table), or on the free list; the free count matches the list.
    pub fn verify(&mut self) -> JetResult<()> {
        let page_count = self.header.page_count as usize;
        let mut owners = vec![0u32; page_count];
        owners[HEADER_PAGE as usize] += 1;
        let mut pages = btree::collect_pages(self, CATALOG_ROOT_PAGE)?;
        for (_, root) in self.tables()? {
            pages.extend(btree::collect_pages(self, root)?);
        }
        let free = self.walk_free_list()?;
        if free.len() != self.header.free_page_count as usize {
            return Err(JetError::DatabaseCorrupted);
        }
        pages.extend(free);
        for page in pages {
            let owner = owners
                .get_mut(page as usize)
                .ok_or(JetError::DatabaseCorrupted)?;
            *owner += 1;
        }
        if owners.iter().any(|&owner| owner != 1) {
            return Err(JetError::DatabaseCorrupted);
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Catalog

    /// The root of table `name`, if the catalog has it.
    pub fn table_root(&mut self, name: &str) -> JetResult<Option<PageNumber>> {
        match btree::get(self, CATALOG_ROOT_PAGE, name.as_bytes())? {
            None => Ok(None),
            Some(value) => decode_root(&value).map(Some),
        }
    }

    /// Creates an empty table and records it in the catalog.
    pub fn create_table(&mut self, name: &str) -> JetResult<PageNumber> {
        if self.table_root(name)?.is_some() {
            return Err(JetError::TableDuplicate);
        }
        let root = self.allocate()?;
        self.write_node(root, Node::empty_leaf())?;
        let previous = btree::put(
            self,
            CATALOG_ROOT_PAGE,
            name.as_bytes(),
            &root.to_le_bytes(),
        )?;
        debug_assert!(previous.is_none());
        Ok(root)
    }

    /// Removes table `name` from the catalog and frees every page of its tree.
    pub fn delete_table(&mut self, name: &str) -> JetResult<()> {
        let root = self.table_root(name)?.ok_or(JetError::ObjectNotFound)?;
        // Collect first: a failure while walking leaves the table whole.
        let pages = btree::collect_pages(self, root)?;
        debug_assert_eq!(pages.first(), Some(&root));
        btree::remove(self, CATALOG_ROOT_PAGE, name.as_bytes())?;
        for page in pages {
            self.free(page)?;
        }
        Ok(())
    }

    /// Every table as (name, root), in name order.
    pub fn tables(&mut self) -> JetResult<Vec<(String, PageNumber)>> {
        btree::scan(self, CATALOG_ROOT_PAGE)?
            .into_iter()
            .map(|(name, root)| {
                let name = String::from_utf8(name).map_err(|_| JetError::DatabaseCorrupted)?;
                Ok((name, decode_root(&root)?))
            })
            .collect()
    }

    /// One online-defrag step over the whole database: the first mergeable pair of sibling
    /// nodes, walking tables in name order and the catalog last. `wrong_separator` is planted
    /// bug `InternalMergeWrongSeparator`.
    pub fn defrag_step(&mut self, wrong_separator: bool) -> JetResult<Option<DefragReport>> {
        let mut trees = self.tables()?;
        trees.push((CATALOG_NAME.to_owned(), CATALOG_ROOT_PAGE));
        let free_before = self.header.free_page_count;
        for (table, root) in trees {
            if let Some(merge) = btree::defrag_step(self, root, wrong_separator)? {
                debug_assert_eq!(
                    u64::from(self.header.free_page_count - free_before),
                    merge.pages_freed
                );
                return Ok(Some(DefragReport {
                    table,
                    pages_freed: merge.pages_freed,
                    entries_moved: merge.entries_moved,
                }));
            }
        }
        Ok(None)
    }
}

fn decode_root(value: &[u8]) -> JetResult<PageNumber> {
    let bytes: [u8; 4] = value.try_into().map_err(|_| JetError::DatabaseCorrupted)?;
    let root = PageNumber::from_le_bytes(bytes);
    if root <= CATALOG_ROOT_PAGE {
        return Err(JetError::DatabaseCorrupted);
    }
    Ok(root)
}

/// What one defrag step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefragReport {
    /// The table whose tree was compacted ([`CATALOG_NAME`] for the catalog).
    pub table: String,
    pub pages_freed: u64,
    /// Leaf entries, or internal keys, moved from the right node into the left.
    pub entries_moved: u64,
}
