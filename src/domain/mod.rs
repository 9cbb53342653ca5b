//! Plain domain types of arkku and the parsers that create them.
//!
//! Everything that crosses the service boundary as a string (channel and
//! purpose names, roles, channel kinds, contact values) is turned into a
//! type here, once, at the edge. The parsers are the only constructors, so
//! a value of one of these types is valid by construction and the rest of
//! the service never re-checks it ("parse, don't validate").
//!
//! The module is deliberately free of I/O, crypto and storage concerns:
//! it only depends on `phonenumber`, `unicode-properties`, `time`, `jiff` (zones), `serde` and `thiserror`, which
//! keeps the rules for names, normalisation, masking and time formats easy to test in isolation.

mod actor;
mod channel;
mod contact;
pub mod dsr;
mod names;
mod staff;
mod text;
pub mod time;
mod zone;

pub use actor::Actor;
pub use channel::{ChannelKind, ChannelKindError};
pub use contact::{mask, normalise, ContactError, NormalisedValue, Region};
pub use names::{ChannelId, NameError, Purpose, Role, RoleError, PROFILE_DOMAIN};
pub use staff::{StaffName, StaffNameError, StaffRole, StaffRoleError, MAX_STAFF_NAME_LEN};
pub use text::{check_chars, short_text, DisplayName, TextError, MAX_DISPLAY_NAME_CHARS};
pub use zone::{DisplayZone, ZoneError, DEFAULT_DISPLAY_ZONE};
