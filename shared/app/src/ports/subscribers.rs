//! The subscriber store: subscribers, their address items by unit and part.

use super::StoreError;
use async_trait::async_trait;
use bealert_core::SubscriberId;
use bealert_core::subscriber::Contact;
use bealert_core::subscriber::SubscriberProfile;
use std::sync::Arc;

/// What storing one subscriber did (see [`SubscriberStore::upsert_subscribers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// No subscriber had this id: one was created.
    Created,
    /// The subscriber with this id and the same `external_id` was replaced:
    /// profile, addresses and groups together.
    Updated,
    /// The id belongs to another subscriber (no `external_id`, or another
    /// one): nothing was written. The app picks another id.
    IdTaken,
}

/// A page of [`SubscriberStore::subscriber_page`].
#[derive(Debug, Clone, Default)]
pub struct SubscriberPage {
    pub subscribers: Vec<(SubscriberId, SubscriberProfile)>,
    pub cursor: Option<String>,
}

/// The parts a unit's address items are kept in, read in parallel.
pub const UNIT_PARTS: u32 = 16;

/// The part of a unit a subscriber's address items are kept in.
pub fn unit_part(id: SubscriberId) -> u32 {
    ((id.as_i64() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as u32
}

/// One address item: where a subscriber lives and how to reach them.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressItem {
    pub cell: u64,
    pub lat: f64,
    pub lon: f64,
    /// How many addresses the subscriber has (1 means no de-duplication needed).
    pub address_count: u8,
    /// Phone, e-mail and external id are `None` unless contacts were asked for.
    pub contact: Contact,
}

/// A page of a unit part's address items, and where the next one starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitPage {
    pub items: Vec<AddressItem>,
    pub next: Option<String>,
}

#[async_trait]
pub trait SubscriberStore: Send + Sync {
    /// Stores subscribers with their address and group items, under the ids
    /// the app chose ([`crate::usecases::identity`]); one answer per entry,
    /// in order, entries applied in order. An id nobody has is created; an
    /// id whose subscriber has the same `external_id` is replaced at once
    /// (no reader, and no concurrent upsert, ever sees the address items of
    /// two versions); any other id is `IdTaken` and nothing is written.
    /// The store executes this rule with conditional writes; it never picks
    /// an id itself.
    async fn upsert_subscribers(
        &self,
        subscribers: Arc<[(SubscriberId, SubscriberProfile)]>,
    ) -> Result<Vec<Upsert>, StoreError>;

    /// Every address item in these cells (resolution 7).
    async fn addresses_in_cells(
        &self,
        cells: &[u64],
        with_contacts: bool,
    ) -> Result<Vec<AddressItem>, StoreError>;

    /// One page of [`addresses_in_unit`](Self::addresses_in_unit): about
    /// `limit` items after `cursor` (`None`: from the start), and the
    /// cursor of the next page (`None`: the part is read). A resolver
    /// plans a page while the store reads the next, so a national alert's
    /// first recipients wait for a page, not for a sixteenth of a region.
    /// `limit` is a hint: a store may answer the whole part at once, as
    /// this default does.
    async fn addresses_in_unit_page(
        &self,
        unit: &str,
        part: u32,
        with_contacts: bool,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<UnitPage, StoreError> {
        let _ = limit;
        if cursor.is_some() {
            return Ok(UnitPage::default());
        }
        Ok(UnitPage {
            items: self.addresses_in_unit(unit, part, with_contacts).await?,
            next: None,
        })
    }

    /// Everyone registered in a group, wherever they live.
    async fn group_members(&self, group: &str) -> Result<Vec<Contact>, StoreError>;

    async fn subscriber_count(&self) -> Result<u64, StoreError>;

    /// The address items recorded in a unit (`level:code`, see
    /// [`Address::units`](bealert_core::subscriber::Address::units)) that
    /// the store keeps in `part` of [`UNIT_PARTS`]: a key lookup, no
    /// geometry. Every item is in exactly one part, the store's choice
    /// (DynamoDB spreads them by [`unit_part`] to read in parallel; SQLite
    /// by row number, so that the first part is read quickly).
    async fn addresses_in_unit(
        &self,
        unit: &str,
        part: u32,
        with_contacts: bool,
    ) -> Result<Vec<AddressItem>, StoreError>;

    /// One page of the stored subscribers, for work over all of them (the
    /// backfill of address units): `cursor` is `None` for the first page
    /// and the previous answer's cursor after; `None` back: the last page.
    async fn subscriber_page(&self, cursor: Option<String>) -> Result<SubscriberPage, StoreError>;

    /// One subscriber's profile, as stored.
    async fn get_subscriber(
        &self,
        id: SubscriberId,
    ) -> Result<Option<SubscriberProfile>, StoreError>;

    /// Stores `new` for a subscriber only if what is stored is still
    /// `expected` (address units brought up to date without undoing a
    /// change made meanwhile); false if it changed or is gone.
    async fn replace_if_unchanged(
        &self,
        id: SubscriberId,
        expected: &SubscriberProfile,
        new: &SubscriberProfile,
    ) -> Result<bool, StoreError>;

    /// Removes a subscriber with all its address and group items at once
    /// (a paused or deleted registration); false if there was none.
    async fn remove_subscriber(&self, id: SubscriberId) -> Result<bool, StoreError>;
}
