//! bealert-core: the domain of a public warning platform — pure rules, no I/O.
//!
//! Everything here is deterministic and synchronous: validation of what
//! citizens and operators submit, CAP 1.2 vocabularies, the geometry of a
//! warning zone and its H3 covering, and the text each recipient receives.

pub mod alert;
pub mod area;
pub mod broadcast;
pub mod cap;
pub mod cap_model;
pub mod cap_xml;
pub mod channel;
pub mod contact;
pub mod containment;
pub mod delivery;
pub mod endpoint;
pub mod error;
pub mod estimate;
pub mod geography;
pub mod ids;
pub mod language;
pub mod latency;
pub mod lifecycle;
pub mod message;
pub mod network;
pub mod operator;
pub mod outlet;
pub mod phone_line;
pub mod polygon_check;
pub mod receipt;
pub mod schedule;
pub mod signup;
pub mod sms;
pub mod subscriber;
pub mod template;
pub mod zone;

pub use channel::{Channel, ChannelSet};
pub use error::{FieldError, ValidationErrors};
pub use ids::{AlertId, SubscriberId};
pub use language::Language;
