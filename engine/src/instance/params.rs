//! System parameters (`JetGetSystemParameter`/`JetSetSystemParameter`) and per-instance
//! options chosen at creation.

use crate::error::{JetError, JetResult};
use crate::instance::mutations::Mutations;

/// The parameters jetsim understands, after ESE's `JET_param*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SystemParameter {
    /// `JET_paramCheckpointDepthMax`: the background flusher keeps the checkpoint depth (log
    /// bytes between the checkpoint and the log tip) at or below this.
    CheckpointDepthMaxBytes,
    /// `JET_paramCacheSizeMax`: buffer manager capacity in pages (at least 8).
    CacheSizePages,
    /// `JET_paramMaxVerPages`, counted in versions rather than pages; set before init.
    VersionStoreMaxVersions,
    /// `JET_paramEnableOnlineDefrag`: 0 or 1; when 1, every attached database is defragmented
    /// in the background.
    OnlineDefrag,
}

impl SystemParameter {
    pub const ALL: &'static [SystemParameter] = &[
        SystemParameter::CheckpointDepthMaxBytes,
        SystemParameter::CacheSizePages,
        SystemParameter::VersionStoreMaxVersions,
        SystemParameter::OnlineDefrag,
    ];
}

/// Current parameter values of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemParameters {
    pub checkpoint_depth_max_bytes: u64,
    pub cache_size_pages: u64,
    pub version_store_max_versions: u64,
    pub online_defrag: bool,
}

impl Default for SystemParameters {
    fn default() -> Self {
        SystemParameters {
            checkpoint_depth_max_bytes: 256 * 1024,
            cache_size_pages: 256,
            version_store_max_versions: 4096,
            online_defrag: false,
        }
    }
}

pub const CACHE_SIZE_PAGES_MIN: u64 = 8;
pub const CACHE_SIZE_PAGES_MAX: u64 = 1 << 20;
pub const VERSION_STORE_MAX_VERSIONS_MAX: u64 = 1 << 24;

impl SystemParameters {
    pub fn get(&self, parameter: SystemParameter) -> u64 {
        match parameter {
            SystemParameter::CheckpointDepthMaxBytes => self.checkpoint_depth_max_bytes,
            SystemParameter::CacheSizePages => self.cache_size_pages,
            SystemParameter::VersionStoreMaxVersions => self.version_store_max_versions,
            SystemParameter::OnlineDefrag => u64::from(self.online_defrag),
        }
    }

    /// The parameters with `parameter` set to `value`, or why not. `initialized`: whether the
    /// instance is past init (some parameters are fixed then, as in ESE).
    pub fn with(
        &self,
        parameter: SystemParameter,
        value: u64,
        initialized: bool,
    ) -> JetResult<Self> {
        let mut next = *self;
        // `sim/src/model.rs` checks the same ranges in the same shape on purpose: the
        // simulator's model is an independent oracle and shares no code with the engine.
        match parameter {
            SystemParameter::CheckpointDepthMaxBytes => next.checkpoint_depth_max_bytes = value,
            SystemParameter::CacheSizePages => {
                if !(CACHE_SIZE_PAGES_MIN..=CACHE_SIZE_PAGES_MAX).contains(&value) {
                    return Err(JetError::InvalidParameter);
                }
                next.cache_size_pages = value;
            }
            SystemParameter::VersionStoreMaxVersions => {
                if initialized {
                    return Err(JetError::AlreadyInitialized);
                }
                if !(1..=VERSION_STORE_MAX_VERSIONS_MAX).contains(&value) {
                    return Err(JetError::InvalidParameter);
                }
                next.version_store_max_versions = value;
            }
            SystemParameter::OnlineDefrag => {
                next.online_defrag = match value {
                    0 => false,
                    1 => true,
                    _ => return Err(JetError::InvalidParameter),
                }
            }
        }
        Ok(next)
    }
}

/// Chosen once, at `create_instance`; not Jet parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceOptions {
    /// Run background work (defrag, version cleanup, checkpoint flushing) on a thread of the
    /// runtime. When false, the harness drives it with `Jet::run_background_tasks`, which is
    /// how deterministic unit tests take control of it.
    pub background_thread: bool,
    /// Planted bugs (empty unless built with the `mutants` feature).
    pub mutations: Mutations,
}

impl Default for InstanceOptions {
    fn default() -> Self {
        InstanceOptions {
            background_thread: true,
            mutations: Mutations::NONE,
        }
    }
}

impl InstanceOptions {
    /// No background thread: every background step happens when the caller asks.
    pub fn manual() -> Self {
        InstanceOptions {
            background_thread: false,
            ..Self::default()
        }
    }
}
