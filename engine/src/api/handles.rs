//! Jet handles: `Copy` newtypes over a `u64`, like ESE's `JET_INSTANCE`, `JET_SESID`,
//! `JET_DBID` and `JET_TABLEID`.
//!
//! Layout, most significant first: kind (8 bits) | instance slot (8) | object slot (16) |
//! generation (32). Generations come from one counter per [`crate::Jet`], so a handle is never
//! valid twice: a stale handle (closed object, slot reused) and a foreign one (another
//! instance's object, or another handle kind) are both detected by comparing the generation
//! stored in the slot.

use std::fmt;

/// What a handle names. Part of the encoding so a session handle passed as a table handle is
/// rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HandleKind {
    Instance = 1,
    Session = 2,
    Database = 3,
    Table = 4,
}

impl HandleKind {
    // Same shape as `storage::page::PageKind::from_byte`: each on-disk or in-handle tag
    // decodes to its own enum; a shared macro would save four lines and hide the table.
    fn from_bits(bits: u8) -> Option<HandleKind> {
        match bits {
            1 => Some(HandleKind::Instance),
            2 => Some(HandleKind::Session),
            3 => Some(HandleKind::Database),
            4 => Some(HandleKind::Table),
            _ => None,
        }
    }
}

/// The decoded fields of a handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HandleParts {
    pub kind: HandleKind,
    pub instance_slot: u8,
    pub object_slot: u16,
    pub generation: u32,
}

impl HandleParts {
    pub const fn encode(self) -> u64 {
        ((self.kind as u64) << 56)
            | ((self.instance_slot as u64) << 48)
            | ((self.object_slot as u64) << 32)
            | self.generation as u64
    }

    /// `None` for a value no handle of any kind can have (unknown kind, generation 0).
    pub fn decode(raw: u64) -> Option<HandleParts> {
        let kind = HandleKind::from_bits((raw >> 56) as u8)?;
        let generation = raw as u32;
        // Generation 0 is never issued, so the all-zero value (JET_sesidNil and friends) and
        // any value with a zero low word are invalid.
        if generation == 0 {
            return None;
        }
        Some(HandleParts {
            kind,
            instance_slot: (raw >> 48) as u8,
            object_slot: (raw >> 32) as u16,
            generation,
        })
    }
}

macro_rules! handle_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $ese:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl $name {
            /// A handle no call will accept (ESE's nil value).
            pub const NIL: $name = $name(0);

            pub(crate) fn new(instance_slot: u8, object_slot: u16, generation: u32) -> Self {
                debug_assert!(generation != 0, "generation 0 is reserved for nil");
                $name(
                    HandleParts { kind: $kind, instance_slot, object_slot, generation }.encode(),
                )
            }

            /// The decoded fields, if this value is a well-formed handle of this kind.
            pub fn parts(self) -> Option<HandleParts> {
                HandleParts::decode(self.0).filter(|parts| parts.kind == $kind)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.parts() {
                    Some(p) => write!(
                        f,
                        concat!($ese, "(i{}:{}#{})"),
                        p.instance_slot, p.object_slot, p.generation
                    ),
                    None => write!(f, concat!($ese, "(invalid {:#x})"), self.0),
                }
            }
        }
    };
}

handle_type!(
    /// `JET_INSTANCE`.
    InstanceHandle, HandleKind::Instance, "instance"
);
handle_type!(
    /// `JET_SESID`.
    SessionHandle, HandleKind::Session, "session"
);
handle_type!(
    /// `JET_DBID`.
    DatabaseHandle, HandleKind::Database, "dbid"
);
handle_type!(
    /// `JET_TABLEID`: an open cursor on a table.
    TableHandle, HandleKind::Table, "tableid"
);

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{quickcheck, Arbitrary, Gen};

    impl Arbitrary for HandleKind {
        fn arbitrary(g: &mut Gen) -> Self {
            *g.choose(&[
                HandleKind::Instance,
                HandleKind::Session,
                HandleKind::Database,
                HandleKind::Table,
            ])
            .unwrap()
        }
    }

    impl Arbitrary for HandleParts {
        fn arbitrary(g: &mut Gen) -> Self {
            HandleParts {
                kind: HandleKind::arbitrary(g),
                instance_slot: u8::arbitrary(g),
                object_slot: u16::arbitrary(g),
                generation: u32::arbitrary(g).max(1),
            }
        }
    }

    quickcheck! {
        fn encoding_round_trips(parts: HandleParts) -> bool {
            HandleParts::decode(parts.encode()) == Some(parts)
        }

        /// Two different handles never share an encoding.
        fn encoding_is_injective(a: HandleParts, b: HandleParts) -> bool {
            (a == b) == (a.encode() == b.encode())
        }

        /// A handle of one kind is never accepted as another kind.
        fn kinds_do_not_alias(parts: HandleParts) -> bool {
            let raw = parts.encode();
            let accepted = [
                InstanceHandle(raw).parts().is_some(),
                SessionHandle(raw).parts().is_some(),
                DatabaseHandle(raw).parts().is_some(),
                TableHandle(raw).parts().is_some(),
            ];
            accepted.iter().filter(|&&ok| ok).count() == 1
        }

        /// Arbitrary bits decode to a handle or to nothing, never panic.
        fn decode_is_total(raw: u64) -> bool {
            match HandleParts::decode(raw) {
                Some(parts) => parts.encode() == raw,
                None => true,
            }
        }
    }

    #[test]
    fn nil_handles_are_invalid() {
        assert!(SessionHandle::NIL.parts().is_none());
        assert!(InstanceHandle::NIL.parts().is_none());
        assert!(TableHandle::NIL.parts().is_none());
        assert!(DatabaseHandle::NIL.parts().is_none());
    }
}
