//! Transactions: the version store that gives them snapshot isolation and undo.

pub mod version_store;

pub use version_store::{CommitTs, Reader, RecordId, TxnId, VersionStore, VersionStoreStats};
