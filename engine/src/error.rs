//! The one place that knows JET error codes. Every failure in the engine is a [`JetError`]
//! variant; [`JetError::code`] and [`JetError::from_code`] are the whole mapping, and nothing
//! else in the workspace writes a numeric JET_err value.
//!
//! Values are ESE's (`published/inc/jethdr.w`); the table in `shared/ESE_FACTS.md` lists the
//! ones the stop protocol is about, and the storage codes below are ESE's for the same
//! conditions.

use thiserror::Error;

/// `Result` of every Jet call.
pub type JetResult<T> = Result<T, JetError>;

macro_rules! jet_errors {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $text:literal; )*) => {
        /// A JET_err code as a Rust error. `#[non_exhaustive]`: the durability work adds codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Error)]
        #[non_exhaustive]
        pub enum JetError {
            $( $(#[$doc])* #[error($text)] $variant, )*
        }

        impl JetError {
            /// Every variant, in declaration order (for exhaustive tests of the mapping).
            pub const ALL: &'static [JetError] = &[ $( JetError::$variant, )* ];

            /// The ESE `JET_err` value.
            pub const fn code(self) -> i32 {
                match self { $( JetError::$variant => $code, )* }
            }

            /// The ESE name without its `JET_err` prefix, e.g. `ClientRequestToStopJetService`.
            pub const fn name(self) -> &'static str {
                match self { $( JetError::$variant => stringify!($variant), )* }
            }

            /// The variant for an ESE `JET_err` value, if jetsim knows it.
            pub fn from_code(code: i32) -> Option<JetError> {
                match code { $( $code => Some(JetError::$variant), )* _ => None }
            }
        }
    };
}

jet_errors! {
    /// A grbit argument has bits this call does not define.
    InvalidGrbit = -900, "invalid grbit";
    /// `JetLogWrite` failed: the log could not be written (the instance becomes unavailable).
    LogWriteFail = -510, "failure writing to the log file";
    /// ESE's internal `errLogServiceStopped`: `JET_bitStopServiceStopAndEmitLog` ended logging,
    /// so a call that would write the log is refused and changes nothing.
    LogServiceStopped = -624, "logging has been stopped";
    /// An I/O error from the storage backend.
    DiskIO = -1022, "disk I/O error";
    /// `JET_errDatabaseDirtyShutdown`: the database was not shut down cleanly; the instance
    /// whose log owns it must run recovery (init) before another instance may attach it.
    DatabaseDirtyShutdown = -550, "database was not shut down cleanly; recovery must run first";
    /// `JET_errInvalidPath`: a database path that is not a relative name in the file store.
    InvalidPath = -1023, "invalid file path";
    /// A record or key exceeds what a page can hold.
    RecordTooBig = -1026, "record or key too large";
    /// Termination is in progress; the instance admits no call.
    TermInProgress = -1000, "termination in progress";
    FeatureNotAvailable = -1001, "feature not available";
    InvalidName = -1002, "invalid name";
    /// A bad instance handle, or an argument out of range.
    InvalidParameter = -1003, "invalid parameter";
    InvalidDatabaseId = -1010, "invalid database id";
    /// The record under the cursor was deleted.
    RecordDeleted = -1017, "record has been deleted";
    /// The instance exists but `init` has not succeeded on it.
    NotInitialized = -1029, "instance not initialized";
    AlreadyInitialized = -1030, "instance already initialized";
    InitInProgress = -1031, "initialization in progress";
    /// The file is locked or in use: another process (or another engine on the same store)
    /// holds it open.
    FileAccessDenied = -1032, "file access denied";
    NotInTransaction = -1054, "not in a transaction";
    MustRollback = -1057, "transaction must roll back";
    /// Term with transactions still open.
    TooManyActiveUsers = -1059, "too many active database users";
    /// The version store is full and cleanup freed nothing.
    VersionStoreOutOfMemory = -1069, "version store out of memory";
    InstanceNameInUse = -1086, "instance name already in use";
    /// `JET_errOutOfBuffers`. Inside jetsim it is the buffer manager's signal that an
    /// operation needs a page that is not cached: the call scope reads the page with no lock
    /// held and runs the call again (`storage/buffer_manager.rs`, `MissPolicy::Defer`). No
    /// Jet call returns it (asserted in the call scope).
    OutOfBuffers = -1014, "out of database page buffers";
    /// The instance hit a fatal error (I/O) and is fail-stop until terminated.
    InstanceUnavailable = -1090, "instance unavailable";
    OutOfSessions = -1101, "out of sessions";
    /// Another transaction changed this record after this transaction's snapshot.
    WriteConflict = -1102, "write conflict";
    TransTooDeep = -1103, "transactions nested too deeply";
    InvalidSesid = -1104, "invalid session id";
    InTransaction = -1108, "operation not allowed inside a transaction";
    SesidTableIdMismatch = -1114, "table id belongs to another session";
    InvalidInstance = -1115, "invalid instance";
    /// Term with `JET_bitTermDirty`: the instance is gone and recovery will run at next init.
    DirtyShutdown = -1116, "terminated without a clean shutdown";
    DatabaseDuplicate = -1201, "database already attached";
    DatabaseInUse = -1202, "database in use";
    DatabaseNotFound = -1203, "database not found";
    DatabaseCorrupted = -1206, "database corrupted";
    DatabaseLocked = -1207, "database locked";
    TooManyInstances = -1214, "too many instances";
    /// Attach of a database that a different instance of this engine is using.
    DatabaseSharingViolation = -1215, "database in use by another instance";
    TableLocked = -1302, "table locked";
    TableDuplicate = -1303, "table already exists";
    TableInUse = -1304, "table in use";
    ObjectNotFound = -1305, "object not found";
    InvalidTableId = -1310, "invalid table id";
    TooManyOpenTables = -1311, "too many open tables";
    /// `JetStopServiceInstance` has run: only allowlisted calls are admitted.
    ClientRequestToStopJetService = -1329, "client requested stop of the Jet service";
    RecordNotFound = -1601, "record not found";
    NoCurrentRecord = -1603, "no current record";
    KeyDuplicate = -1605, "key already exists";
    TooManyAttachedDatabases = -1805, "too many attached databases";
    FileNotFound = -1811, "file not found";
    InvalidOperation = -1906, "invalid operation";
    SessionSharingViolation = -1910, "session in use by another thread";
    SessionContextAlreadySet = -1912, "session context already set";
    SessionContextNotSetByThisThread = -1913, "session context not set by this thread";
    SessionInUse = -1914, "session in use";
}

impl JetError {
    /// Maps a storage backend failure. Not-found and a file another process or engine holds
    /// (`ResourceBusy`, the store's lock refusal; ESE maps sharing and lock violations to
    /// `JET_errFileAccessDenied`) are user errors; everything else is a disk error, which
    /// makes the instance fail-stop.
    pub fn from_io(error: &std::io::Error) -> JetError {
        match error.kind() {
            std::io::ErrorKind::NotFound => JetError::FileNotFound,
            std::io::ErrorKind::ResourceBusy => JetError::FileAccessDenied,
            _ => JetError::DiskIO,
        }
    }
}

/// `JET_wrnDatabaseAttached`: attach found the database already attached (a warning, +1007).
pub const WRN_DATABASE_ATTACHED: i32 = 1007;
/// `JET_errSuccess`.
pub const SUCCESS: i32 = 0;

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn codes_are_unique_and_negative() {
        let mut codes: Vec<i32> = JetError::ALL.iter().map(|e| e.code()).collect();
        assert!(codes.iter().all(|&c| c < 0));
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(before, codes.len(), "two variants share a JET_err value");
    }

    #[test]
    fn stop_codes_match_ese() {
        assert_eq!(JetError::ClientRequestToStopJetService.code(), -1329);
        assert_eq!(JetError::InvalidParameter.code(), -1003);
        assert_eq!(JetError::InvalidGrbit.code(), -900);
        assert_eq!(
            JetError::ClientRequestToStopJetService.name(),
            "ClientRequestToStopJetService"
        );
    }

    quickcheck! {
        /// Every i32 either maps to a variant whose code is that i32, or to nothing.
        fn from_code_is_a_partial_inverse(code: i32) -> bool {
            match JetError::from_code(code) {
                Some(error) => error.code() == code,
                None => JetError::ALL.iter().all(|e| e.code() != code),
            }
        }
        fn code_round_trips(index: usize) -> bool {
            let error = JetError::ALL[index % JetError::ALL.len()];
            JetError::from_code(error.code()) == Some(error)
        }
    }
}
