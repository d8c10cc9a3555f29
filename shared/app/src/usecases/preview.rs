//! `POST /v1/zones:preview`: exactly who an alert on this area would reach.

use super::App;
use super::matcher::Matcher;
use crate::AppError;
use crate::error::parse_body;
use bealert_core::area::{Area, AreaRequest};
use bealert_core::operator::Operator;
use bealert_core::zone::{Covering, Zone};
use bealert_core::{Channel, Language, ValidationErrors};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// At most this many cells per store call while previewing ...
const CELLS_PER_SCAN: usize = 128;
/// Store calls in flight at once.
const PARALLEL_SCANS: usize = 2;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    /// Registered subscribers with at least one address in the zone.
    pub recipients: u64,
    /// Of those, how many chose each channel.
    pub by_channel: BTreeMap<Channel, u64>,
    pub by_language: BTreeMap<Language, u64>,
    pub cells: CellStats,
    /// Alert-SMS: the `zones:estimate` answer for the same zone, when
    /// networks have uploaded cells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<bealert_core::estimate::Estimate>,
    /// What the sender should know (see `AlertCreated::warnings`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellStats {
    pub total: usize,
    pub interior: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    area: AreaRequest,
}

/// Covers a validated zone on a blocking thread (a country takes ~0.1 s).
pub(crate) async fn zone_and_covering(area: Area) -> Result<(Arc<Zone>, Covering), AppError> {
    tokio::task::spawn_blocking(move || cover(&area))
        .await
        .map_err(|e| AppError::Internal(format!("covering task failed: {e}")))?
}

fn cover(area: &Area) -> Result<(Arc<Zone>, Covering), AppError> {
    let zone = Zone::new(area);
    let covering = zone
        .covering()
        .map_err(|e| AppError::Invalid(ValidationErrors::single("area", e.to_string())))?;
    Ok((Arc::new(zone), covering))
}

impl App {
    /// Validation and covering run in the geometry lane; `elapsed_ms`
    /// covers the whole request, from the parsed body to the answer.
    pub async fn preview(&self, operator: &Operator, body: &[u8]) -> Result<Preview, AppError> {
        let started = Instant::now();
        let body: PreviewBody = parse_body(body)?;
        let (area, warnings, (zone, covering)) = self
            .operator_area(operator, body.area, "area", cover)
            .await?;
        let (mut preview, estimate) = tokio::try_join!(
            self.count_recipients(zone, covering, started),
            self.estimate_area(area)
        )?;
        preview.estimate = estimate;
        preview.warnings = warnings;
        preview.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(preview)
    }

    /// Previews an already validated area (benchmarks and tests).
    pub async fn preview_area(&self, area: Area) -> Result<Preview, AppError> {
        let started = Instant::now();
        let (zone, covering) = zone_and_covering(area).await?;
        self.count_recipients(zone, covering, started).await
    }

    /// Counts each subscriber once, however many of their addresses are inside.
    async fn count_recipients(
        &self,
        zone: Arc<Zone>,
        covering: Covering,
        started: Instant,
    ) -> Result<Preview, AppError> {
        let matcher = Matcher::new(&zone, &covering.cells);

        let cells: Vec<u64> = covering.cells.iter().map(|c| c.cell).collect();
        // ... and at least as many calls as run in parallel.
        let per_scan = cells
            .len()
            .div_ceil(PARALLEL_SCANS)
            .clamp(1, CELLS_PER_SCAN);
        let chunks: Vec<Vec<u64>> = cells.chunks(per_scan).map(<[u64]>::to_vec).collect();
        let mut scans = futures::stream::iter(chunks)
            .map(|chunk| {
                let store = self.ports.subscribers.clone();
                async move { store.addresses_in_cells(&chunk, false).await }
            })
            .buffer_unordered(PARALLEL_SCANS);

        let mut seen = HashSet::new();
        let mut recipients = 0u64;
        let mut by_channel: BTreeMap<Channel, u64> = BTreeMap::new();
        let mut by_language: BTreeMap<Language, u64> = BTreeMap::new();
        while let Some(items) = scans.try_next().await? {
            for item in items.iter().filter(|i| matcher.matches(i)) {
                let c = &item.contact;
                // One address: cannot be met twice. Several: count the first.
                if item.address_count > 1 && !seen.insert(c.subscriber_id) {
                    continue;
                }
                recipients += 1;
                *by_language.entry(c.language).or_default() += 1;
                for ch in c.channels.iter() {
                    *by_channel.entry(ch).or_default() += 1;
                }
            }
        }
        Ok(Preview {
            recipients,
            by_channel,
            by_language,
            cells: CellStats {
                total: covering.cells.len(),
                interior: covering.interior_count(),
            },
            estimate: None,
            warnings: Vec::new(),
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }
}
