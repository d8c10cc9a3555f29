//! Importing already-verified registrations (`POST /v1/subscribers:import`).

use super::App;
use super::identity::store_profiles;
use super::operators::require;
use crate::AppError;
use crate::error::parse_body;
use bealert_core::error::{ValidationErrors, parse_json};
use bealert_core::operator::Operator;
use bealert_core::subscriber::{SubscriberInput, SubscriberProfile};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub imported: usize,
    pub created: usize,
    pub updated: usize,
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub index: usize,
    pub detail: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    subscribers: Vec<Box<RawValue>>,
}

/// Below this many entries, validation runs inline rather than on worker threads.
const PARALLEL_THRESHOLD: usize = 512;

fn validate_one(raw: &RawValue) -> Result<SubscriberProfile, ValidationErrors> {
    parse_json::<SubscriberInput>(raw.get().as_bytes())?.validate()
}

/// Validates entries on every core; returns each entry's verdict, in order.
async fn validate_all(
    entries: Vec<Box<RawValue>>,
) -> Result<Vec<Result<SubscriberProfile, ValidationErrors>>, AppError> {
    if entries.len() < PARALLEL_THRESHOLD {
        return Ok(entries.iter().map(|r| validate_one(r)).collect());
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = entries.len().div_ceil(workers);
    let mut entries = entries;
    let mut tasks = Vec::new();
    while !entries.is_empty() {
        let rest = entries.split_off(chunk.min(entries.len()));
        let part = std::mem::replace(&mut entries, rest);
        tasks.push(tokio::task::spawn_blocking(move || {
            part.iter().map(|r| validate_one(r)).collect::<Vec<_>>()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.extend(
            t.await
                .map_err(|e| AppError::Internal(format!("validation task failed: {e}")))?,
        );
    }
    Ok(out)
}

impl App {
    /// Imports a batch: good entries are stored, bad ones reported by index.
    pub async fn import_subscribers(
        &self,
        operator: &Operator,
        body: &[u8],
    ) -> Result<ImportReport, AppError> {
        require(
            operator,
            bealert_core::operator::Task::Import,
            "import subscribers",
        )?;
        let body: ImportBody = parse_body(body)?;
        if body.subscribers.len() > self.config.max_import {
            return Err(AppError::TooLarge(format!(
                "{} subscribers in one request is more than the {} accepted; split the import",
                body.subscribers.len(),
                self.config.max_import
            )));
        }

        let mut rejected = Vec::new();
        let mut accepted = Vec::new();
        let started = std::time::Instant::now();
        let verdicts = validate_all(body.subscribers).await?;
        let validated = started.elapsed();
        for (index, verdict) in verdicts.into_iter().enumerate() {
            match verdict {
                Ok(profile) => accepted.push((index, profile)),
                Err(e) => rejected.push(Rejected {
                    index,
                    detail: e.to_string(),
                }),
            }
        }

        let accepted = self.label_profiles(accepted).await?;
        let labelled = started.elapsed();
        let stored = store_profiles(self.ports.subscribers.as_ref(), &self.ids, accepted).await?;
        let (created, updated) = (stored.created, stored.updated);
        rejected.extend(stored.rejected);
        rejected.sort_by_key(|r| r.index);
        tracing::debug!(
            entries = created + updated + rejected.len(),
            validate_ms = validated.as_millis() as u64,
            label_ms = (labelled - validated).as_millis() as u64,
            store_ms = (started.elapsed() - labelled).as_millis() as u64,
            "import"
        );
        Ok(ImportReport {
            imported: created + updated,
            created,
            updated,
            rejected,
        })
    }
}
