//! Keeps the address items of a covering that lie in the zone.

use crate::ports::AddressItem;
use bealert_core::zone::{CoveredCell, Zone};
use std::collections::HashMap;

/// Interior cells are accepted whole; points of boundary cells are tested.
pub(crate) struct Matcher<'a> {
    zone: &'a Zone,
    interior: HashMap<u64, bool>,
}

impl<'a> Matcher<'a> {
    pub fn new(zone: &'a Zone, cells: &[CoveredCell]) -> Self {
        Self {
            zone,
            interior: cells.iter().map(|c| (c.cell, c.interior)).collect(),
        }
    }

    pub fn matches(&self, item: &AddressItem) -> bool {
        match self.interior.get(&item.cell) {
            Some(true) => true,
            Some(false) => self.zone.contains(item.lat, item.lon),
            None => false,
        }
    }
}
