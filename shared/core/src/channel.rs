//! The channels a registered citizen can be warned on, and sets of them.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Voice,
    Email,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::Voice, Channel::Email];
    pub const EXPECTED: &'static str = "use sms, voice or email";

    pub fn code(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
            Channel::Email => "email",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    pub fn index(self) -> u8 {
        self as u8
    }

    pub fn from_index(i: u8) -> Option<Self> {
        Self::ALL.get(usize::from(i)).copied()
    }

    fn bit(self) -> u8 {
        1 << self.index()
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A set of channels, stored as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChannelSet(u8);

impl ChannelSet {
    pub const ALL: ChannelSet = ChannelSet(0b111);

    pub fn from_bits(bits: u8) -> Self {
        Self(bits & Self::ALL.0)
    }

    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn insert(&mut self, c: Channel) {
        self.0 |= c.bit();
    }

    pub fn remove(&mut self, c: Channel) {
        self.0 &= !c.bit();
    }

    pub fn contains(self, c: Channel) -> bool {
        self.0 & c.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn intersection(self, other: ChannelSet) -> ChannelSet {
        ChannelSet(self.0 & other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Channel> {
        Channel::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Channel> for ChannelSet {
    fn from_iter<I: IntoIterator<Item = Channel>>(iter: I) -> Self {
        let mut s = ChannelSet::default();
        for c in iter {
            s.insert(c);
        }
        s
    }
}

impl Serialize for ChannelSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for ChannelSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Channel>::deserialize(d)?.into_iter().collect())
    }
}

/// Parses a list of channel names, reporting unknown ones by index.
pub(crate) fn parse_channels(
    path: &str,
    names: &[String],
    errors: &mut crate::error::Collector,
) -> ChannelSet {
    let mut set = ChannelSet::default();
    for (i, name) in names.iter().enumerate() {
        match Channel::from_code(name) {
            Some(c) => set.insert(c),
            None => errors.push(
                format!("{path}[{i}]"),
                format!("unknown channel {name:?}; {}", Channel::EXPECTED),
            ),
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_set_round_trips_through_bits_and_json() {
        let set: ChannelSet = [Channel::Email, Channel::Sms].into_iter().collect();
        assert_eq!(ChannelSet::from_bits(set.bits()), set);
        assert_eq!(serde_json::to_string(&set).unwrap(), r#"["sms","email"]"#);
        assert!(!set.contains(Channel::Voice));
    }
}
