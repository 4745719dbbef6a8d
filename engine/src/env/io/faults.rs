//! Seeded randomness and the fault plan of the simulated disk: the one SplitMix64 of the
//! workspace, the rates a [`FaultPlan`] draws, the [`InjectedFault`] record of what was
//! injected, and the per-disk fault state that decides whether an operation fails.

use std::io;

/// The granularity at which a write may tear.
pub const SECTOR_BYTES: usize = 512;
/// Rates are in parts per million.
pub const PPM: u32 = 1_000_000;

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, statistically decent PRNG. The only
/// source of randomness of the simulated disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound > 0`; the modulo bias is irrelevant at these sizes).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0);
        self.next_u64() % bound
    }

    /// True with probability `numerator` / `denominator` (`denominator > 0`); always draws.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    /// True with probability `ppm` / 1,000,000.
    pub fn chance_ppm(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.below(u64::from(PPM)) < u64::from(ppm)
    }
}

/// What a crash does to unsynced writes (see the module documentation, points 1 and 2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrashFaults {
    /// Probability that one unsynced write (or truncation) is lost whole.
    pub lost_write_ppm: u32,
    /// Probability that a surviving unsynced write keeps only some of its sectors.
    pub torn_write_ppm: u32,
    /// Probability that one sector an unsynced write put on the disk comes back as random
    /// bytes (the write was in flight when the power failed).
    pub garbage_sector_ppm: u32,
    /// Probability that one sector an unsynced write put on the disk (and that is not
    /// garbage) comes back with one bit flipped.
    pub bit_flip_ppm: u32,
}

impl CrashFaults {
    /// Every unsynced write is lost: what [`MemIo::crash`] does.
    pub const LOSE_ALL: CrashFaults = CrashFaults {
        lost_write_ppm: PPM,
        torn_write_ppm: 0,
        garbage_sector_ppm: 0,
        bit_flip_ppm: 0,
    };
}

/// A seeded fault configuration for [`MemIo`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub seed: u64,
    pub read_error_ppm: u32,
    pub write_error_ppm: u32,
    pub sync_error_ppm: u32,
    /// Used by [`MemIo::crash_seeded`].
    pub crash: CrashFaults,
}

impl FaultPlan {
    /// A plan with every rate derived from the seed ("swarm testing": each seed gets its own
    /// mix), bounded so a run makes progress: I/O errors at most 1 in 200 operations.
    pub fn swarm(seed: u64) -> FaultPlan {
        let mut rng = SplitMix64::new(seed ^ 0x5EED_FA17_0000_0000);
        let mut rate = |max_ppm: u64| u32::try_from(rng.below(max_ppm + 1)).expect("small");
        FaultPlan {
            seed,
            read_error_ppm: rate(5_000),
            write_error_ppm: rate(5_000),
            sync_error_ppm: rate(5_000),
            crash: CrashFaults {
                lost_write_ppm: rate(u64::from(PPM)),
                torn_write_ppm: rate(500_000),
                // Drawn after the older rates, so those keep their values for a seed.
                garbage_sector_ppm: rate(100_000),
                bit_flip_ppm: rate(100_000),
            },
        }
    }
}

/// One fault the simulated disk injected. Every variant is, by construction, injected: an
/// engine error that does not follow one of these in the trace is the engine's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InjectedFault {
    ReadError {
        path: String,
        offset: u64,
        len: u64,
    },
    WriteError {
        path: String,
        offset: u64,
        len: u64,
    },
    SyncError {
        path: String,
    },
    /// Power was cut at this mutating operation (0-based); it and everything after failed.
    /// `operation` names it (`"write main/jet.log"`, `"sync db/main.edb"`), or is `None` when
    /// the cut was set at an index already passed (the power fails between operations).
    PowerCut {
        op_index: u64,
        operation: Option<String>,
    },
    /// At a crash, an unsynced write (or truncation, `len` = new length) was lost whole.
    LostWrite {
        path: String,
        offset: u64,
        len: u64,
    },
    /// At a crash, a file created (or truncated by a create) since its directory's last
    /// sync was gone: its entry never reached the disk (a file the same path named before,
    /// if any, is back).
    LostCreate {
        path: String,
    },
    /// At a crash, a file removed since its directory's last sync was back.
    LostRemove {
        path: String,
    },
    /// At a crash, an unsynced write kept only `sectors_kept` of its `sectors_total` sectors.
    TornWrite {
        path: String,
        offset: u64,
        len: u64,
        sectors_kept: u32,
        sectors_total: u32,
    },
    /// At a crash, the `len` bytes an unsynced write put in one sector at `offset` came back
    /// as random bytes.
    GarbageSector {
        path: String,
        offset: u64,
        len: u64,
    },
    /// At a crash, bit `bit` (0 = least significant) of the byte at `offset`, which an
    /// unsynced write put there, came back flipped.
    BitFlip {
        path: String,
        offset: u64,
        bit: u8,
    },
}

impl std::fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[injected] {self:?}")
    }
}

#[derive(Debug)]
pub(super) struct FaultState {
    pub(super) plan: FaultPlan,
    pub(super) enabled: bool,
    pub(super) rng: SplitMix64,
    pub(super) injected: Vec<InjectedFault>,
    /// Mutating operations (write, sync, set_len, directory sync) attempted so far.
    pub(super) ops: u64,
    pub(super) cut_after_ops: Option<u64>,
    pub(super) power_cut: bool,
}

impl Default for FaultState {
    fn default() -> Self {
        FaultState {
            plan: FaultPlan::default(),
            enabled: false,
            rng: SplitMix64::new(0),
            injected: Vec::new(),
            ops: 0,
            cut_after_ops: None,
            power_cut: false,
        }
    }
}

#[derive(Clone, Copy)]
pub(super) enum Op {
    Read,
    Write,
    Sync,
    SetLen,
    /// The sync of a directory after an entry changed in it (`path` names the directory).
    SyncDirectory,
}

pub(super) fn injected_error(what: &str) -> io::Error {
    io::Error::other(format!("injected fault: {what}"))
}

impl FaultState {
    /// Fails while the power is cut: for the directory entry changes, which are not counted
    /// operations of their own (their directory's sync is).
    pub(super) fn check_power(&self) -> io::Result<()> {
        match self.power_cut {
            true => Err(injected_error("power cut")),
            false => Ok(()),
        }
    }

    /// Decides whether an operation fails, recording the fault if it does.
    pub(super) fn check(&mut self, op: Op, path: &str, offset: u64, len: u64) -> io::Result<()> {
        if !matches!(op, Op::Read) {
            let index = self.ops;
            self.ops += 1;
            if !self.power_cut && self.cut_after_ops.is_some_and(|cut| index >= cut) {
                self.power_cut = true;
                let verb = match op {
                    Op::Write => "write",
                    Op::Sync => "sync",
                    Op::SetLen => "set_len",
                    Op::SyncDirectory => "sync directory",
                    Op::Read => unreachable!("reads are not mutating operations"),
                };
                self.injected.push(InjectedFault::PowerCut {
                    op_index: index,
                    operation: Some(format!("{verb} {path}")),
                });
            }
        }
        if self.power_cut {
            return Err(injected_error("power cut"));
        }
        if !self.enabled {
            return Ok(());
        }
        let (ppm, fault) = match op {
            Op::Read => (
                self.plan.read_error_ppm,
                InjectedFault::ReadError {
                    path: path.to_owned(),
                    offset,
                    len,
                },
            ),
            Op::Write | Op::SetLen => (
                self.plan.write_error_ppm,
                InjectedFault::WriteError {
                    path: path.to_owned(),
                    offset,
                    len,
                },
            ),
            Op::Sync | Op::SyncDirectory => (
                self.plan.sync_error_ppm,
                InjectedFault::SyncError {
                    path: path.to_owned(),
                },
            ),
        };
        if self.rng.chance_ppm(ppm) {
            self.injected.push(fault);
            return Err(injected_error("I/O error"));
        }
        Ok(())
    }
}
