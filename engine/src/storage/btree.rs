//! B+tree operations over pages of one file: lookup, insert/overwrite with splits by encoded
//! size, delete without merging, ordered neighbours, scans, and the online-defrag merge.
//!
//! Keys compare as bytes (memcmp). In an internal node `children[i]` holds keys below
//! `keys[i]` and `children[i + 1]` keys at or above it. A root's page number never changes:
//! a root split moves the root's two halves into new pages and turns the root into an
//! internal node over them, so nothing that records a root (the catalog) ever needs an
//! update. Deletes leave leaves under-full or empty; neighbour searches descend and backtrack
//! to the next child, so they skip empty leaves without sibling pointers, and
//! [`defrag_step`] merges under-full siblings later, one pair per call.
//!
//! Every walk is bounded: by [`MAX_TREE_HEIGHT_LEVELS`] in depth and by the file's page count
//! in pages visited, so a corrupt file with a pointer cycle yields `DatabaseCorrupted`.

use super::database::Pager;
use super::page::{
    internal_fits, leaf_fits, split_internal, split_leaf, Entry, Node, PAGE_BODY_BYTES,
};
use super::PageNumber;
use crate::error::{JetError, JetResult};

/// Deeper than any tree the page sizes allow for a 2^32-page file.
pub const MAX_TREE_HEIGHT_LEVELS: usize = 16;

/// Which child of an internal node may hold `key`.
fn child_index(keys: &[Vec<u8>], key: &[u8]) -> usize {
    keys.partition_point(|separator| separator.as_slice() <= key)
}

/// Pages a walk may still visit; a valid tree visits each page at most once.
struct Budget(u32);

impl Budget {
    fn new(pager: &Pager<'_>) -> Budget {
        Budget(pager.header().page_count)
    }
    fn spend(&mut self) -> JetResult<()> {
        self.0 = self.0.checked_sub(1).ok_or(JetError::DatabaseCorrupted)?;
        Ok(())
    }
}

fn check_depth(depth: usize) -> JetResult<()> {
    if depth >= MAX_TREE_HEIGHT_LEVELS {
        return Err(JetError::DatabaseCorrupted);
    }
    Ok(())
}

/// One internal node on the way down, and which child the descent took.
struct PathStep {
    page: PageNumber,
    keys: Vec<Vec<u8>>,
    children: Vec<PageNumber>,
    index: usize,
}

/// Descends to the leaf that may hold `key`: the path of internal nodes, the leaf's page and
/// its entries.
fn descend(
    pager: &mut Pager<'_>,
    root: PageNumber,
    key: &[u8],
) -> JetResult<(Vec<PathStep>, PageNumber, Vec<Entry>)> {
    let mut path = Vec::new();
    let mut page = root;
    let mut node = pager.read_root(root)?;
    loop {
        check_depth(path.len())?;
        match node {
            Node::Leaf { entries } => return Ok((path, page, entries)),
            Node::Internal { keys, children } => {
                let index = child_index(&keys, key);
                let child = children[index];
                path.push(PathStep {
                    page,
                    keys,
                    children,
                    index,
                });
                page = child;
                node = pager.read_node(page)?;
            }
        }
    }
}

fn search(entries: &[Entry], key: &[u8]) -> Result<usize, usize> {
    entries.binary_search_by(|(entry_key, _)| entry_key.as_slice().cmp(key))
}

pub fn get(pager: &mut Pager<'_>, root: PageNumber, key: &[u8]) -> JetResult<Option<Vec<u8>>> {
    let (_, _, mut entries) = descend(pager, root, key)?;
    Ok(search(&entries, key)
        .ok()
        .map(|index| entries.swap_remove(index).1))
}

/// Inserts or overwrites; returns the previous value.
pub fn put(
    pager: &mut Pager<'_>,
    root: PageNumber,
    key: &[u8],
    value: &[u8],
) -> JetResult<Option<Vec<u8>>> {
    let (path, leaf_page, mut entries) = descend(pager, root, key)?;
    let previous = match search(&entries, key) {
        Ok(index) => Some(std::mem::replace(&mut entries[index].1, value.to_vec())),
        Err(index) => {
            entries.insert(index, (key.to_vec(), value.to_vec()));
            None
        }
    };
    if leaf_fits(&entries) {
        pager.write_node(leaf_page, Node::Leaf { entries })?;
        return Ok(previous);
    }
    crate::mark!(pager.marks(), BtreeLeafSplit);
    let (left, right) = split_leaf(entries);
    let separator = right[0].0.clone();
    let split = Split {
        left: Node::Leaf { entries: left },
        separator,
        right: Node::Leaf { entries: right },
    };
    insert_split(pager, root, path, leaf_page, split)?;
    Ok(previous)
}

/// A node that overflowed, as two halves and the key between them.
struct Split {
    left: Node,
    separator: Vec<u8>,
    right: Node,
}

/// Writes a split node at `page` and pushes its separator up the path, splitting parents
/// as needed. A split root keeps its page number and becomes an internal node.
fn insert_split(
    pager: &mut Pager<'_>,
    root: PageNumber,
    mut path: Vec<PathStep>,
    mut page: PageNumber,
    mut split: Split,
) -> JetResult<()> {
    // Each iteration climbs one level, so this is bounded by the path's length.
    loop {
        debug_assert!(split.left.fits() && split.right.fits());
        if page == root {
            debug_assert!(path.is_empty());
            crate::mark!(pager.marks(), BtreeRootSplit);
            let left_page = pager.allocate()?;
            let right_page = pager.allocate()?;
            pager.write_node(left_page, split.left)?;
            pager.write_node(right_page, split.right)?;
            let new_root = Node::Internal {
                keys: vec![split.separator],
                children: vec![left_page, right_page],
            };
            return pager.write_node(root, new_root);
        }
        let right_page = pager.allocate()?;
        pager.write_node(page, split.left)?;
        pager.write_node(right_page, split.right)?;
        let step = path
            .pop()
            .expect("a non-root node has a parent on the path");
        let (mut keys, mut children) = (step.keys, step.children);
        keys.insert(step.index, split.separator);
        children.insert(step.index + 1, right_page);
        if internal_fits(&keys) {
            return pager.write_node(step.page, Node::Internal { keys, children });
        }
        crate::mark!(pager.marks(), BtreeInternalSplit);
        let halves = split_internal(keys, children);
        page = step.page;
        split = Split {
            left: Node::Internal {
                keys: halves.left_keys,
                children: halves.left_children,
            },
            separator: halves.separator,
            right: Node::Internal {
                keys: halves.right_keys,
                children: halves.right_children,
            },
        };
    }
}

/// Removes `key`; returns the previous value. Never merges: the leaf may become empty.
pub fn remove(pager: &mut Pager<'_>, root: PageNumber, key: &[u8]) -> JetResult<Option<Vec<u8>>> {
    let (_, leaf_page, mut entries) = descend(pager, root, key)?;
    let Ok(index) = search(&entries, key) else {
        return Ok(None);
    };
    let (_, previous) = entries.remove(index);
    pager.write_node(leaf_page, Node::Leaf { entries })?;
    Ok(Some(previous))
}

/// The smallest entry with a key strictly greater than `key` (`None`: the first entry).
pub fn next_after(
    pager: &mut Pager<'_>,
    root: PageNumber,
    key: Option<&[u8]>,
) -> JetResult<Option<Entry>> {
    let node = pager.read_root(root)?;
    let mut budget = Budget::new(pager);
    next_in(pager, node, key, 0, &mut budget)
}

/// The mirror of [`prev_in`]; kept as two functions because the direction changes the
/// partition test, which end of the leaf is taken and the order children are tried in: one
/// function with a direction flag would branch on nearly every line.
fn next_in(
    pager: &mut Pager<'_>,
    node: Node,
    key: Option<&[u8]>,
    depth: usize,
    budget: &mut Budget,
) -> JetResult<Option<Entry>> {
    check_depth(depth)?;
    budget.spend()?;
    match node {
        Node::Leaf { entries } => {
            let start = key.map_or(0, |key| {
                entries.partition_point(|(entry_key, _)| entry_key.as_slice() <= key)
            });
            Ok(entries.into_iter().nth(start))
        }
        Node::Internal { keys, children } => {
            // Children before `start` hold only keys <= `key`; later ones are tried in order
            // when an earlier one has nothing above `key` (empty or exhausted leaves).
            let start = key.map_or(0, |key| child_index(&keys, key));
            let tried = if pager.next_tries_one_child() {
                1
            } else {
                children.len()
            };
            for &child in children[start..].iter().take(tried) {
                let child_node = pager.read_node(child)?;
                if let Some(found) = next_in(pager, child_node, key, depth + 1, budget)? {
                    return Ok(Some(found));
                }
            }
            Ok(None)
        }
    }
}

/// The greatest entry with a key strictly less than `key` (`None`: the last entry).
pub fn prev_before(
    pager: &mut Pager<'_>,
    root: PageNumber,
    key: Option<&[u8]>,
) -> JetResult<Option<Entry>> {
    let node = pager.read_root(root)?;
    let mut budget = Budget::new(pager);
    prev_in(pager, node, key, 0, &mut budget)
}

/// The mirror of [`next_in`]: see there for why they stay two.
fn prev_in(
    pager: &mut Pager<'_>,
    node: Node,
    key: Option<&[u8]>,
    depth: usize,
    budget: &mut Budget,
) -> JetResult<Option<Entry>> {
    check_depth(depth)?;
    budget.spend()?;
    match node {
        Node::Leaf { mut entries } => {
            let end = key.map_or(entries.len(), |key| {
                entries.partition_point(|(entry_key, _)| entry_key.as_slice() < key)
            });
            entries.truncate(end);
            Ok(entries.pop())
        }
        Node::Internal { keys, children } => {
            // Child j holds keys >= keys[j-1]; it can hold keys < `key` only if
            // keys[j-1] < `key`, so the last candidate is the count of such separators.
            let end = key.map_or(keys.len(), |key| {
                keys.partition_point(|separator| separator.as_slice() < key)
            });
            for &child in children[..=end].iter().rev() {
                let child_node = pager.read_node(child)?;
                if let Some(found) = prev_in(pager, child_node, key, depth + 1, budget)? {
                    return Ok(Some(found));
                }
            }
            Ok(None)
        }
    }
}

/// Every entry in key order.
pub fn scan(pager: &mut Pager<'_>, root: PageNumber) -> JetResult<Vec<Entry>> {
    let node = pager.read_root(root)?;
    let mut budget = Budget::new(pager);
    let mut out = Vec::new();
    scan_in(pager, node, 0, &mut budget, &mut out)?;
    // Each node's keys are checked when it is decoded; across nodes only the whole scan can
    // tell. Keys out of order are a damaged tree, reported rather than served.
    if !out.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        return Err(JetError::DatabaseCorrupted);
    }
    Ok(out)
}

fn scan_in(
    pager: &mut Pager<'_>,
    node: Node,
    depth: usize,
    budget: &mut Budget,
    out: &mut Vec<Entry>,
) -> JetResult<()> {
    check_depth(depth)?;
    budget.spend()?;
    match node {
        Node::Leaf { entries } => out.extend(entries),
        Node::Internal { children, .. } => {
            for child in children {
                let child_node = pager.read_node(child)?;
                scan_in(pager, child_node, depth + 1, budget, out)?;
            }
        }
    }
    Ok(())
}

/// Every page of the tree, root first (pre-order).
pub fn collect_pages(pager: &mut Pager<'_>, root: PageNumber) -> JetResult<Vec<PageNumber>> {
    let mut budget = Budget::new(pager);
    let mut pages = Vec::new();
    // (page, depth) still to visit; pushed in reverse so children come out in order.
    let mut stack = vec![(root, 0usize)];
    while let Some((page, depth)) = stack.pop() {
        check_depth(depth)?;
        budget.spend()?;
        pages.push(page);
        if let Node::Internal { children, .. } = pager.read_node(page)? {
            stack.extend(children.iter().rev().map(|&child| (child, depth + 1)));
        }
    }
    Ok(pages)
}

/// What one merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merge {
    pub pages_freed: u64,
    pub entries_moved: u64,
}

/// One online-defrag step in one tree: collapses a root with a single child, or merges the
/// first pair of under-full sibling nodes (deepest level first, then key order) into the left
/// one and frees the right. `None` when the tree has nothing to merge.
/// `wrong_separator` is planted bug `InternalMergeWrongSeparator` (see [`try_merge`]).
pub fn defrag_step(
    pager: &mut Pager<'_>,
    root: PageNumber,
    wrong_separator: bool,
) -> JetResult<Option<Merge>> {
    let node = pager.read_node(root)?;
    if let Node::Internal { keys, children } = &node {
        if keys.is_empty() {
            let only_child = children[0];
            let moved = collapse_into_root(pager, root, only_child)?;
            return Ok(Some(Merge {
                pages_freed: 1,
                entries_moved: moved,
            }));
        }
    }
    let mut budget = Budget::new(pager);
    let mut walk = DefragWalk {
        budget: &mut budget,
        wrong_separator,
    };
    defrag_in(pager, root, node, true, 0, &mut walk)
}

/// What every level of one defrag step's walk shares.
struct DefragWalk<'b> {
    budget: &'b mut Budget,
    /// Planted bug `InternalMergeWrongSeparator`.
    wrong_separator: bool,
}

/// Copies the root's only child into the root and frees the child: one level less.
fn collapse_into_root(
    pager: &mut Pager<'_>,
    root: PageNumber,
    child: PageNumber,
) -> JetResult<u64> {
    let child_node = pager.read_node(child)?;
    let moved = child_node.entry_count() as u64;
    pager.write_node(root, child_node)?;
    pager.free(child)?;
    Ok(moved)
}

fn defrag_in(
    pager: &mut Pager<'_>,
    page: PageNumber,
    node: Node,
    is_root: bool,
    depth: usize,
    walk: &mut DefragWalk<'_>,
) -> JetResult<Option<Merge>> {
    check_depth(depth)?;
    walk.budget.spend()?;
    let Node::Internal {
        mut keys,
        mut children,
    } = node
    else {
        return Ok(None);
    };
    let child_nodes = children
        .iter()
        .map(|&child| pager.read_node(child))
        .collect::<JetResult<Vec<Node>>>()?;
    // Deeper levels first: merging leaves is what empties internal nodes.
    for (&child, child_node) in children.iter().zip(&child_nodes) {
        if let Some(merge) = defrag_in(pager, child, child_node.clone(), false, depth + 1, walk)? {
            return Ok(Some(merge));
        }
    }
    for index in 0..keys.len() {
        let (left, right) = (&child_nodes[index], &child_nodes[index + 1]);
        let Some(merged) = try_merge(left, &keys[index], right, walk.wrong_separator)? else {
            continue;
        };
        let entries_moved = right.entry_count() as u64 + u64::from(!right.is_leaf());
        let (left_page, right_page) = (children[index], children[index + 1]);
        crate::mark!(pager.marks(), DefragMergedPages);
        crate::mark!(pager.marks(), DefragMergedInternalPages if !right.is_leaf());
        pager.write_node(left_page, merged)?;
        keys.remove(index);
        children.remove(index + 1);
        let root_emptied = is_root && keys.is_empty();
        pager.write_node(page, Node::Internal { keys, children })?;
        pager.free(right_page)?;
        let mut pages_freed = 1;
        if root_emptied {
            // The root lost its last separator: pull its only child up.
            collapse_into_root(pager, page, left_page)?;
            pages_freed += 1;
        }
        return Ok(Some(Merge {
            pages_freed,
            entries_moved,
        }));
    }
    Ok(None)
}

/// The merge of two sibling nodes, if the result fits and the pair is worth merging: their
/// combined body takes at most half a page, or either is empty. With `wrong_separator`
/// (planted bug `InternalMergeWrongSeparator`) two internal nodes merge around the right
/// one's first key instead of their parent's separator: the keys between the two then route
/// to the left node's last child, where they are not.
fn try_merge(
    left: &Node,
    separator: &[u8],
    right: &Node,
    wrong_separator: bool,
) -> JetResult<Option<Node>> {
    let separator = match right {
        Node::Internal { keys, .. } if wrong_separator && !keys.is_empty() => &keys[0][..],
        _ => separator,
    };
    let merged = match (left, right) {
        (Node::Leaf { entries: left }, Node::Leaf { entries: right }) => Node::Leaf {
            entries: left.iter().chain(right).cloned().collect(),
        },
        (
            Node::Internal {
                keys: left_keys,
                children: left_children,
            },
            Node::Internal {
                keys: right_keys,
                children: right_children,
            },
        ) => Node::Internal {
            // The separator comes down between the two key runs.
            keys: left_keys
                .iter()
                .cloned()
                .chain([separator.to_vec()])
                .chain(right_keys.iter().cloned())
                .collect(),
            children: left_children
                .iter()
                .chain(right_children)
                .copied()
                .collect(),
        },
        // Siblings are always at the same level of a balanced tree.
        _ => return Err(JetError::DatabaseCorrupted),
    };
    let under_full = merged.body_size_bytes() <= PAGE_BODY_BYTES / 2
        || left.entry_count() == 0
        || right.entry_count() == 0;
    Ok((merged.fits() && under_full).then_some(merged))
}
