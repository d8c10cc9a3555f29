//! Subscriber identity, decided once for both homes.
//!
//! * A subscriber with an `external_id` is that id's: [`SubscriberId::from_external_id`],
//!   a stable hash, so re-imports update the same subscriber in any store.
//! * Anyone else gets a fresh time-ordered id from [`IdGenerator`]: strictly
//!   increasing within a process, so one import never proposes an id twice.
//! * Across processes (several Lambda instances), two fresh ids can still
//!   meet; the store's conditional create answers `IdTaken` and the import
//!   draws another id. So no entry is ever lost or merged into another.

use super::subscribers::Rejected;
use crate::ports::{StoreError, SubscriberStore, Upsert};
use bealert_core::SubscriberId;
use bealert_core::subscriber::SubscriberProfile;
use std::sync::{Arc, Mutex};

/// Rounds of fresh ids an entry gets when its id turns out to be taken.
const MAX_ID_ROUNDS: u32 = 5;

/// Fresh, time-ordered subscriber ids, strictly increasing in this process.
#[derive(Debug, Default)]
pub struct IdGenerator {
    last: Mutex<i64>,
}

impl IdGenerator {
    /// The next id: the time-ordered id for `now_ms`, or one past the last
    /// id given if that is not larger.
    pub fn next(&self, now_ms: i64) -> SubscriberId {
        let candidate = SubscriberId::time_ordered(now_ms, rand::random()).as_i64();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let id = candidate.max(last.saturating_add(1));
        *last = id;
        SubscriberId::from_i64(id).unwrap_or(SubscriberId::from_random(rand::random()))
    }

    /// The id a profile is stored under: its external id's, or a fresh one.
    pub fn id_for(&self, profile: &SubscriberProfile, now_ms: i64) -> SubscriberId {
        match &profile.external_id {
            Some(ext) => SubscriberId::from_external_id(ext),
            None => self.next(now_ms),
        }
    }
}

/// What [`store_profiles`] did; `created + updated + rejected` is every entry.
#[derive(Debug, Default)]
pub struct StoredProfiles {
    pub created: usize,
    pub updated: usize,
    pub rejected: Vec<Rejected>,
}

/// Stores validated profiles (each with its index in the request) under
/// the ids this module's rule gives them; an entry whose fresh id turns out
/// to be taken gets another. The counts are the store's own answers.
pub async fn store_profiles(
    store: &dyn SubscriberStore,
    ids: &IdGenerator,
    profiles: Vec<(usize, SubscriberProfile)>,
) -> Result<StoredProfiles, StoreError> {
    let now = crate::now_ms();
    let mut pending: Vec<(usize, SubscriberId, SubscriberProfile)> = profiles
        .into_iter()
        .map(|(i, p)| (i, ids.id_for(&p, now), p))
        .collect();
    let mut out = StoredProfiles::default();
    let mut round = 0;
    while !pending.is_empty() {
        round += 1;
        let (indexes, batch): (Vec<usize>, Vec<_>) =
            pending.into_iter().map(|(i, id, p)| (i, (id, p))).unzip();
        let batch: Arc<[(SubscriberId, SubscriberProfile)]> = batch.into();
        let answers = store.upsert_subscribers(batch.clone()).await?;
        if answers.len() != batch.len() {
            return Err(StoreError::Permanent(format!(
                "the store answered for {} of {} subscribers",
                answers.len(),
                batch.len()
            )));
        }
        pending = Vec::new();
        for ((index, (_, profile)), answer) in indexes.into_iter().zip(batch.iter()).zip(answers) {
            match answer {
                Upsert::Created => out.created += 1,
                Upsert::Updated => out.updated += 1,
                Upsert::IdTaken if profile.external_id.is_none() && round < MAX_ID_ROUNDS => {
                    pending.push((index, ids.next(crate::now_ms()), profile.clone()));
                }
                Upsert::IdTaken => out.rejected.push(Rejected {
                    index,
                    detail: match &profile.external_id {
                        Some(ext) => format!(
                            "external_id {ext:?} maps to the id of another subscriber; choose another external_id"
                        ),
                        None => "no free subscriber id was found; send this entry again".into(),
                    },
                }),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn fresh_ids_never_repeat_within_one_millisecond() {
        let g = IdGenerator::default();
        let ids: HashSet<SubscriberId> = (0..200_000).map(|_| g.next(1_800_000_000_000)).collect();
        assert_eq!(ids.len(), 200_000);
    }

    #[test]
    fn fresh_ids_increase() {
        let g = IdGenerator::default();
        let a = g.next(1_800_000_000_000);
        let b = g.next(1_800_000_000_000);
        let c = g.next(1_799_000_000_000);
        assert!(a < b && b < c, "{a} {b} {c}");
    }
}
