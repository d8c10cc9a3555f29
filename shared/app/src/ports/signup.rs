//! Citizens' registrations, counters, and the geocoder of the signup page.

use super::{Gateways, StoreError};
use async_trait::async_trait;
use std::sync::Arc;

/// Citizens' own registrations (the signup page), apart from subscribers:
/// only a registration's reachable projection is stored as a subscriber.
#[async_trait]
pub trait RegistrationStore: Send + Sync {
    /// Stores a new registration; `Conflict` if its id exists.
    async fn insert_registration(
        &self,
        registration: &bealert_core::signup::Registration,
    ) -> Result<(), StoreError>;
    async fn get_registration(
        &self,
        id: &str,
    ) -> Result<Option<bealert_core::signup::Registration>, StoreError>;
    /// Replaces the registration if the stored one still has version
    /// `registration.version - 1`; false (nothing written) otherwise.
    async fn replace_registration(
        &self,
        registration: &bealert_core::signup::Registration,
    ) -> Result<bool, StoreError>;
    /// Deletes it; false if there was none.
    async fn delete_registration(&self, id: &str) -> Result<bool, StoreError>;
    /// The registrations listing `key` among their `lookup_keys`.
    async fn registrations_by_key(&self, key: &str) -> Result<Vec<String>, StoreError>;
    /// Stores a group invitation; `Conflict` if its key exists.
    async fn insert_invitation(
        &self,
        invitation: &bealert_core::signup::Invitation,
    ) -> Result<(), StoreError>;
    /// Uses an invitation once, atomically: its group if it exists, has not
    /// expired at `now` and has a use left (one is taken); `None` otherwise.
    async fn use_invitation(&self, key: &str, now: i64) -> Result<Option<String>, StoreError>;
}

/// Counts of events in fixed windows (signups per number, per prefix, per
/// address), shared by every instance: the abuse limits are decided in
/// the app ([`crate::usecases::signup`]) on these counts.
#[async_trait]
pub trait Counters: Send + Sync {
    /// Adds `by` to `key`'s count in the window of `window_ms` containing
    /// `now_ms`, and returns the new count.
    async fn bump(
        &self,
        key: &str,
        by: u64,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError>;
    /// `key`'s count in the window containing `now_ms` (0 if none).
    async fn count(&self, key: &str, window_ms: i64, now_ms: i64) -> Result<u64, StoreError>;
}

/// What a citizen typed as an address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressQuery {
    pub street: Option<String>,
    pub postal_code: Option<String>,
    pub municipality: Option<String>,
}

/// How close a geocoded point is to the address typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// The building (a geocoding service found the address).
    Address,
    Street,
    /// The centre of the municipality of a postal code.
    Municipality,
    /// Only the seat of the judicial canton is known: kilometres off.
    Region,
    /// The citizen's device gave it (browser geolocation).
    Device,
}

/// A point found for an address.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Place {
    pub lat: f64,
    pub lon: f64,
    /// What the point is, in words (`"1000 Brussel"`).
    pub label: String,
    pub precision: Precision,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeocodeError {
    #[error("geocoding is unavailable: {0}")]
    Unavailable(String),
}

/// Addresses to points: an offline gazetteer (embedded) or Amazon Location.
#[async_trait]
pub trait Geocoder: Send + Sync {
    /// The places matching the query, best first (empty: nothing found).
    async fn geocode(&self, query: &AddressQuery) -> Result<Vec<Place>, GeocodeError>;
}

/// The ports of the public signup.
#[derive(Clone)]
pub struct SignupPorts {
    pub registrations: Arc<dyn RegistrationStore>,
    pub counters: Arc<dyn Counters>,
    pub geocoder: Arc<dyn Geocoder>,
    /// What verification codes and self-service links leave through: the
    /// signup's own sending identity and configuration (its own provider
    /// accounts, SES configuration set and sender, SMS origination pool),
    /// never the alerts' [`Ports::gateways`], so that a spend limit or a
    /// sender suspension caused by signup traffic cannot silence alerts.
    pub gateways: Gateways,
}
