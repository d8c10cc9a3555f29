//! Mobile networks (Alert-SMS): creating them, their cells
//! (`PUT /v1/networks/{name}/cells`), and the population estimate
//! (`POST /v1/zones:estimate`).

use super::App;
use super::operators::{generate_key, require};
use crate::error::parse_body;
use crate::ports::{IndexedCell, Network, NetworkInfo, NetworkStore, StoreError};
use crate::{AppError, format_ms, now_ms};
use bealert_core::ValidationErrors;
use bealert_core::area::{Area, AreaRequest};
use bealert_core::estimate::{
    Estimate, NetworkEstimate, NetworkFigures, PreparedCell, ZoneShape, estimate,
};
use bealert_core::network::{cover_index_cells, parse_cells, validate_network_name};
use bealert_core::operator::{Operator, hash_key};
use geo::MultiPolygon;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tunables of Alert-SMS.
#[derive(Debug, Clone)]
pub struct BroadcastConfig {
    /// Active devices per person present (SIM cards, tablets, watches): the
    /// people figures are devices divided by this.
    pub devices_per_person: f64,
    /// Cells older than this are flagged `stale` in every answer using them.
    pub stale_after: Duration,
    /// How long one request to a network may take.
    pub gateway_timeout: Duration,
    /// Attempts per network before it is declared failed.
    pub max_attempts: u32,
    /// First wait before retrying a network; doubles per attempt.
    pub retry_base: Duration,
    /// Cell broadcast: seconds between repetitions.
    pub repetition_period_s: u32,
}

impl Default for BroadcastConfig {
    fn default() -> Self {
        Self {
            devices_per_person: 1.2,
            stale_after: Duration::from_secs(7 * 24 * 3600),
            gateway_timeout: Duration::from_secs(10),
            max_attempts: 5,
            retry_base: Duration::from_secs(1),
            repetition_period_s: 60,
        }
    }
}

/// Creates a network; returns it with its key (shown once, stored hashed).
pub async fn create_network(
    networks: &dyn NetworkStore,
    name: &str,
) -> Result<(Network, String), AppError> {
    validate_network_name(name).map_err(AppError::BadRequest)?;
    let key = generate_key();
    let network = Network {
        name: name.to_string(),
        key_hash: hash_key(&key),
        created_at: now_ms(),
    };
    networks
        .insert_network(&network)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                AppError::Conflict(format!("a network named {name:?} already exists"))
            }
            other => other.into(),
        })?;
    Ok((network, key))
}

/// `PUT /v1/networks/{name}/cells`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellsReplaced {
    pub network: String,
    pub cells: u64,
    pub active_devices: u64,
    /// Footprints bealert derived as Voronoi regions (clipped to Belgium)
    /// because the feature gave only the site's position.
    pub derived_footprints: u64,
    pub refreshed_at: String,
    pub elapsed_ms: f64,
}

/// `POST /v1/networks/{name}/cells:upload`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CellsUpload {
    pub upload_id: String,
    pub method: &'static str,
    pub upload_url: String,
    pub expires_at: String,
    /// Where to ask for the uploaded file to be loaded.
    pub then: String,
}

fn upload_key(network: &str, id: &str) -> String {
    format!("cells/{network}/{id}.geojson")
}

/// `GET /v1/networks`'s items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkView {
    pub name: String,
    pub cells: u64,
    pub active_devices: u64,
    pub derived_footprints: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<String>,
    pub stale: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EstimateBody {
    area: AreaRequest,
    /// Also give the footprints of the cells that reach beyond the zone
    /// (the console draws the overshoot with them).
    #[serde(default)]
    overshoot_cells: bool,
}

/// An estimate with the cells on its zone's edge and the zone.
type WithBorder = (
    Estimate,
    Vec<(String, Arc<PreparedCell>)>,
    Arc<EstimateZone>,
);

/// A cell less than this outside the zone (100 m²) does not count as
/// reaching beyond it (footprints share edges with zones to the float).
const MIN_OVERSHOOT_KM2: f64 = 1e-4;

/// At most this many overshoot cells are given back (the nearest part of
/// a national zone's border is enough to draw).
const MAX_OVERSHOOT_CELLS: usize = 2_000;

/// `POST /v1/zones:estimate`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct EstimateAnswer {
    #[serde(flatten)]
    pub estimate: Estimate,
    /// With `overshoot_cells`: a GeoJSON FeatureCollection of the cells
    /// partly outside the zone (`network`, `cell_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overshoot_cells: Option<serde_json::Value>,
}

/// Prepared cells, cached per network version and index cell: a zone
/// reads from the store only the index cells no earlier zone read.
#[derive(Default)]
pub(crate) struct CellCache {
    networks: Mutex<HashMap<String, Arc<CachedNetwork>>>,
}

struct CachedNetwork {
    version: u64,
    by_parent: Mutex<HashMap<u64, Vec<Arc<PreparedCell>>>>,
}

/// A zone ready for estimates, with its index cells.
pub(crate) struct EstimateZone {
    pub shape: ZoneShape,
    pub parents: Vec<u64>,
}

impl EstimateZone {
    /// The index cells are those of each part's bounding box: a few more
    /// than the shape's own, read from the cache, and a long border costs
    /// nothing to tile.
    pub(crate) fn new(area: &Area) -> Self {
        let shape = ZoneShape::new(area);
        let boxes = MultiPolygon::new(
            shape
                .shape()
                .iter()
                .filter_map(|p| geo::BoundingRect::bounding_rect(p).map(|r| r.to_polygon()))
                .collect(),
        );
        let parents = cover_index_cells(&boxes);
        Self { shape, parents }
    }
}

/// One network's cells for a zone, and its figures.
pub(crate) struct NetworkSelection {
    pub info: NetworkInfo,
    pub cells: Vec<Arc<PreparedCell>>,
    pub figures: NetworkFigures,
}

/// The answer where Alert-SMS is not set up (503).
pub const NOT_SET_UP: &str = "Alert-SMS (mobile networks) is not set up in this home";

pub(super) fn not_set_up() -> AppError {
    AppError::NotNow(NOT_SET_UP.into())
}

/// Alert-SMS's use cases: the [`App`] with its mobile networks, which a
/// home may leave out. It is obtained only through [`App::networks`], so
/// none of its use cases checks at run time; it reaches the rest (ports,
/// clock, config) through the app.
#[derive(Clone, Copy)]
pub struct NetworksApp<'a> {
    pub(super) app: &'a App,
    pub(super) broadcast: &'a super::BroadcastState,
}

impl<'a> NetworksApp<'a> {
    /// The app these networks belong to.
    pub fn app(&self) -> &'a App {
        self.app
    }

    /// Alert-SMS's ports (networks, targets, gateways, uploads).
    pub fn ports(&self) -> &'a crate::ports::BroadcastPorts {
        &self.broadcast.ports
    }

    /// Alert-SMS's tunables.
    pub fn config(&self) -> &'a BroadcastConfig {
        &self.broadcast.config
    }
}

/// Refuses an operator who may not list the networks (403): before
/// [`App::networks_offered`], so the refusal is the same with or without
/// Alert-SMS.
pub fn may_list_networks(operator: &Operator) -> Result<(), AppError> {
    require(
        operator,
        bealert_core::operator::Task::Networks,
        "list networks",
    )
}

impl App {
    /// Alert-SMS's use cases, if this home sets it up ([`App::with_broadcast`]).
    pub fn networks(&self) -> Option<NetworksApp<'_>> {
        self.broadcast.as_ref().map(|broadcast| NetworksApp {
            app: self,
            broadcast,
        })
    }

    /// [`Self::networks`], or the 503 a home without Alert-SMS answers
    /// ([`NOT_SET_UP`]).
    pub fn networks_offered(&self) -> Result<NetworksApp<'_>, AppError> {
        self.networks().ok_or_else(not_set_up)
    }

    /// The tunables of Alert-SMS (the defaults without it): the public
    /// channels' attempts and backoff follow them too.
    pub(crate) fn broadcast_config(&self) -> BroadcastConfig {
        self.broadcast
            .as_ref()
            .map(|b| b.config.clone())
            .unwrap_or_default()
    }

    /// The estimate for a validated area; `None` when Alert-SMS is not set
    /// up here or no network has cells.
    pub async fn estimate_area(&self, area: Area) -> Result<Option<Estimate>, AppError> {
        match self.networks() {
            Some(networks) => networks.estimate_area(area).await,
            None => Ok(None),
        }
    }
}

impl NetworksApp<'_> {
    pub async fn create_network(&self, name: &str) -> Result<(Network, String), AppError> {
        create_network(self.ports().networks.as_ref(), name).await
    }

    /// The network behind a Bearer key, which must be `name`'s own.
    async fn network_for(
        &self,
        authorization: Option<&str>,
        name: &str,
    ) -> Result<Network, AppError> {
        let ports = self.ports();
        let key = super::operators::bearer(authorization, "network key")?;
        let hash = hash_key(key);
        match ports.networks.network_by_key_hash(&hash).await? {
            Some(n) if n.name == name => Ok(n),
            Some(n) => Err(AppError::Forbidden(format!(
                "this key belongs to network {:?}; it can only replace that network's cells",
                n.name
            ))),
            None if self.app.ports.operators.operator_by_key_hash(&hash).await?.is_some() => {
                Err(AppError::Forbidden(
                    "an operator key cannot upload cells: use the network's own key \
                     (`bealert network create` prints it)"
                        .into(),
                ))
            }
            None => Err(AppError::Unauthorized(
                "this network key is not known: check it, or create the network with `bealert network create`"
                    .into(),
            )),
        }
    }

    /// Replaces a network's cells with an uploaded FeatureCollection.
    pub async fn replace_cells(
        &self,
        authorization: Option<&str>,
        name: &str,
        body: bytes::Bytes,
    ) -> Result<CellsReplaced, AppError> {
        let started = Instant::now();
        let network = self.network_for(authorization, name).await?;
        self.load_cells(&network, body, started).await
    }

    /// `POST /v1/networks/{name}/cells:upload`: where to PUT a cell file too
    /// large for a request (the AWS home's presigned S3 upload).
    pub async fn cells_upload(
        &self,
        authorization: Option<&str>,
        name: &str,
    ) -> Result<CellsUpload, AppError> {
        let network = self.network_for(authorization, name).await?;
        let uploads = self.uploads()?;
        let id = uuid::Uuid::now_v7().to_string();
        let valid = Duration::from_secs(15 * 60);
        let up = uploads
            .presign_put(&upload_key(&network.name, &id), valid)
            .await?;
        Ok(CellsUpload {
            upload_id: id,
            method: "PUT",
            upload_url: up.url,
            expires_at: format_ms(up.expires_at),
            then: format!("/v1/networks/{}/cells:load", network.name),
        })
    }

    /// `POST /v1/networks/{name}/cells:load` (`{"upload_id": …}`): replaces
    /// the network's cells with the file it uploaded, then deletes the file.
    pub async fn load_uploaded_cells(
        &self,
        authorization: Option<&str>,
        name: &str,
        body: &[u8],
    ) -> Result<CellsReplaced, AppError> {
        let started = Instant::now();
        let network = self.network_for(authorization, name).await?;
        let uploads = self.uploads()?;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Load {
            upload_id: String,
        }
        let load: Load = parse_body(body)?;
        if uuid::Uuid::parse_str(&load.upload_id).is_err() {
            return Err(ValidationErrors::single(
                "upload_id",
                "give the upload_id that cells:upload answered",
            )
            .into());
        }
        let key = upload_key(&network.name, &load.upload_id);
        let file = uploads.get(&key).await?.ok_or_else(|| {
            AppError::NotFound(format!(
                "nothing was uploaded under {:?} (or it expired): PUT the file to the upload_url first",
                load.upload_id
            ))
        })?;
        let answer = self.load_cells(&network, file.into(), started).await?;
        if let Err(e) = uploads.delete(&key).await {
            tracing::warn!(%key, error = %e, "uploaded cells not deleted");
        }
        Ok(answer)
    }

    fn uploads(&self) -> Result<&Arc<dyn crate::ports::UploadStore>, AppError> {
        self.ports().uploads.as_ref().ok_or_else(|| {
            AppError::BadRequest(
                "this home takes cell files in the request itself: PUT the FeatureCollection to \
                 /v1/networks/{name}/cells (up to 128 MiB)"
                    .into(),
            )
        })
    }

    async fn load_cells(
        &self,
        network: &Network,
        body: bytes::Bytes,
        started: Instant,
    ) -> Result<CellsReplaced, AppError> {
        let cells: Vec<IndexedCell> = tokio::task::spawn_blocking(move || {
            let upload = parse_cells(&body)?;
            Ok::<_, ValidationErrors>(
                upload
                    .cells
                    .into_iter()
                    .map(|record| IndexedCell {
                        parents: record.parents(),
                        record,
                    })
                    .collect(),
            )
        })
        .await
        .map_err(|e| AppError::Internal(format!("cells task failed: {e}")))??;
        let at = self.app.now_ms();
        let info = self
            .ports()
            .networks
            .replace_cells(&network.name, cells.into(), at)
            .await?;
        tracing::info!(network = %info.name, cells = info.cells, devices = info.active_devices, "cells replaced");
        Ok(CellsReplaced {
            network: info.name,
            cells: info.cells,
            active_devices: info.active_devices,
            derived_footprints: info.derived,
            refreshed_at: format_ms(at),
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    fn is_stale(&self, info: &NetworkInfo, now: i64) -> bool {
        let age = self.config().stale_after.as_millis() as i64;
        info.refreshed_at.is_none_or(|at| now - at > age)
    }

    /// `GET /v1/networks`: every network and how fresh its cells are.
    pub async fn list_networks(&self, operator: &Operator) -> Result<Vec<NetworkView>, AppError> {
        may_list_networks(operator)?;
        let now = self.app.now_ms();
        Ok(self
            .ports()
            .networks
            .networks()
            .await?
            .into_iter()
            .map(|n| NetworkView {
                stale: self.is_stale(&n, now),
                refreshed_at: n.refreshed_at.map(format_ms),
                name: n.name,
                cells: n.cells,
                active_devices: n.active_devices,
                derived_footprints: n.derived,
            })
            .collect())
    }

    /// `POST /v1/zones:estimate`.
    pub async fn estimate_zone(
        &self,
        operator: &Operator,
        body: &[u8],
    ) -> Result<EstimateAnswer, AppError> {
        let body: EstimateBody = parse_body(body)?;
        let (area, _, ()) = self
            .app
            .operator_area(operator, body.area, "area", |_| Ok(()))
            .await?;
        Ok(match self.estimate_with_border(area).await? {
            Some((estimate, border, zone)) => {
                let overshoot_cells = if body.overshoot_cells {
                    // The cells on the zone's edge, less those wholly inside.
                    let outside = tokio::task::spawn_blocking(move || {
                        border
                            .into_iter()
                            .filter(|(_, c)| {
                                bealert_core::estimate::overshoot_km2(
                                    std::iter::once(c.as_ref()),
                                    &zone.shape,
                                ) > MIN_OVERSHOOT_KM2
                            })
                            .take(MAX_OVERSHOOT_CELLS + 1)
                            .collect::<Vec<_>>()
                    })
                    .await
                    .map_err(|e| AppError::Internal(format!("overshoot task failed: {e}")))?;
                    Some(overshoot_geojson(&outside))
                } else {
                    None
                };
                EstimateAnswer {
                    estimate,
                    overshoot_cells,
                }
            }
            None => EstimateAnswer {
                estimate: self.empty_estimate(),
                overshoot_cells: body.overshoot_cells.then(|| overshoot_geojson(&[])),
            },
        })
    }

    fn empty_estimate(&self) -> Estimate {
        Estimate {
            estimated_present: 0.0,
            reach_devices: 0,
            overshoot_km2: 0.0,
            overshoot_people: 0.0,
            devices_per_person: self.config().devices_per_person,
            stale: false,
            networks: BTreeMap::new(),
        }
    }

    /// The estimate for a validated area; `None` when no network has cells.
    pub async fn estimate_area(&self, area: Area) -> Result<Option<Estimate>, AppError> {
        Ok(self.estimate_with_border(area).await?.map(|(e, ..)| e))
    }

    /// The estimate, the selected cells on the zone's edge (by network),
    /// and the zone.
    async fn estimate_with_border(&self, area: Area) -> Result<Option<WithBorder>, AppError> {
        // No network has cells: no zone to build (a preview's common case).
        let networks = self.ports().networks.networks().await?;
        if networks.iter().all(|n| n.cells == 0) {
            return Ok(None);
        }
        let started = Instant::now();
        let zone = Arc::new(
            tokio::task::spawn_blocking(move || EstimateZone::new(&area))
                .await
                .map_err(|e| AppError::Internal(format!("zone task failed: {e}")))?,
        );
        tracing::debug!(
            parents = zone.parents.len(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "estimate zone prepared"
        );
        let selections = self.select_cells(&zone, None).await?;
        if selections.is_empty() {
            return Ok(None);
        }
        let dpp = self.config().devices_per_person;
        let now = self.app.now_ms();
        let mut out = self.empty_estimate();
        let mut border: Vec<Arc<PreparedCell>> = Vec::new();
        let mut named: Vec<(String, Arc<PreparedCell>)> = Vec::new();
        let single = selections.len() == 1;
        for s in selections {
            let f = &s.figures;
            let stale = self.is_stale(&s.info, now);
            out.stale |= stale;
            out.estimated_present += f.present_devices / dpp;
            out.reach_devices += f.reach_devices;
            out.overshoot_people += f.overshoot_devices / dpp;
            border.extend(f.border.iter().map(|&i| s.cells[i].clone()));
            named.extend(
                f.border
                    .iter()
                    .map(|&i| (s.info.name.clone(), s.cells[i].clone())),
            );
            if single {
                out.overshoot_km2 = f.overshoot_km2;
            }
            out.networks.insert(
                s.info.name.clone(),
                NetworkEstimate {
                    estimated_present: f.present_devices / dpp,
                    present_devices: f.present_devices,
                    reach_devices: f.reach_devices,
                    cells: f.selected.len(),
                    overshoot_km2: f.overshoot_km2,
                    overshoot_people: f.overshoot_devices / dpp,
                    refreshed_at: s.info.refreshed_at.map(format_ms),
                    stale,
                },
            );
        }
        let union_started = Instant::now();
        if !single && !border.is_empty() {
            // Networks overlap one another: their cells' union, less the zone.
            let z = zone.clone();
            out.overshoot_km2 = tokio::task::spawn_blocking(move || {
                bealert_core::estimate::overshoot_km2(border.iter().map(|c| c.as_ref()), &z.shape)
            })
            .await
            .map_err(|e| AppError::Internal(format!("overshoot task failed: {e}")))?;
        }
        tracing::debug!(
            ms = union_started.elapsed().as_secs_f64() * 1000.0,
            "total overshoot"
        );
        Ok(Some((out, named, zone)))
    }

    /// Each network's (or only `only`'s) cells for a zone, with figures;
    /// networks without cells are left out.
    pub(crate) async fn select_cells(
        &self,
        zone: &Arc<EstimateZone>,
        only: Option<&str>,
    ) -> Result<Vec<NetworkSelection>, AppError> {
        let ports = self.ports();
        let infos: Vec<NetworkInfo> = ports
            .networks
            .networks()
            .await?
            .into_iter()
            .filter(|n| n.cells > 0 && only.is_none_or(|o| o == n.name))
            .collect();
        // Cells first (store reads, cached), then every network's figures
        // at once on the blocking pool.
        let mut work = Vec::with_capacity(infos.len());
        for info in infos {
            let cells = self.cells_for(&info, &zone.parents).await?;
            work.push((info, cells));
        }
        let started = Instant::now();
        let tasks = work.into_iter().map(|(info, cells)| {
            let z = zone.clone();
            tokio::task::spawn_blocking(move || {
                let figures = estimate(&cells, &z.shape);
                NetworkSelection {
                    info,
                    cells,
                    figures,
                }
            })
        });
        let out = futures::future::try_join_all(tasks)
            .await
            .map_err(|e| AppError::Internal(format!("estimate task failed: {e}")))?;
        tracing::debug!(
            networks = out.len(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "network figures"
        );
        Ok(out)
    }

    /// The network's cells under these index cells, each once (cached).
    async fn cells_for(
        &self,
        info: &NetworkInfo,
        parents: &[u64],
    ) -> Result<Vec<Arc<PreparedCell>>, AppError> {
        let ports = self.ports();
        let cache = &self.broadcast.cells;
        let net = {
            let mut map = cache.networks.lock().unwrap_or_else(|e| e.into_inner());
            let entry = map.entry(info.name.clone()).or_insert_with(|| {
                Arc::new(CachedNetwork {
                    version: info.version,
                    by_parent: Mutex::new(HashMap::new()),
                })
            });
            if entry.version != info.version {
                *entry = Arc::new(CachedNetwork {
                    version: info.version,
                    by_parent: Mutex::new(HashMap::new()),
                });
            }
            entry.clone()
        };
        let missing: Vec<u64> = {
            let have = net.by_parent.lock().unwrap_or_else(|e| e.into_inner());
            parents
                .iter()
                .copied()
                .filter(|p| !have.contains_key(p))
                .collect()
        };
        if !missing.is_empty() {
            let found = ports.networks.cells_in(&info.name, &missing).await?;
            let prepared: Vec<(Vec<u64>, Arc<PreparedCell>)> =
                tokio::task::spawn_blocking(move || {
                    found
                        .into_iter()
                        .map(|c| (c.parents, Arc::new(PreparedCell::new(&c.record))))
                        .collect()
                })
                .await
                .map_err(|e| AppError::Internal(format!("cells task failed: {e}")))?;
            let wanted: std::collections::HashSet<u64> = missing.iter().copied().collect();
            let mut have = net.by_parent.lock().unwrap_or_else(|e| e.into_inner());
            for p in &missing {
                have.entry(*p).or_default();
            }
            for (ps, cell) in prepared {
                for p in ps {
                    if wanted.contains(&p) {
                        have.entry(p).or_default().push(cell.clone());
                    }
                }
            }
        }
        let have = net.by_parent.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for p in parents {
            for c in have.get(p).into_iter().flatten() {
                if seen.insert(c.cell_id.as_str()) {
                    out.push(c.clone());
                }
            }
        }
        Ok(out)
    }
}

/// The cells partly outside a zone as GeoJSON (at most
/// [`MAX_OVERSHOOT_CELLS`]; `truncated` says when there were more).
fn overshoot_geojson(cells: &[(String, Arc<PreparedCell>)]) -> serde_json::Value {
    let round = |v: f64| (v * 1e5).round() / 1e5;
    let features: Vec<serde_json::Value> = cells
        .iter()
        .take(MAX_OVERSHOOT_CELLS)
        .map(|(network, c)| {
            let coords: Vec<Vec<Vec<[f64; 2]>>> = c
                .shape
                .0
                .iter()
                .map(|p| {
                    std::iter::once(p.exterior())
                        .chain(p.interiors())
                        .map(|r| r.0.iter().map(|q| [round(q.x), round(q.y)]).collect())
                        .collect()
                })
                .collect();
            serde_json::json!({"type": "Feature",
                "properties": {"network": network, "cell_id": c.cell_id},
                "geometry": {"type": "MultiPolygon", "coordinates": coords}})
        })
        .collect();
    serde_json::json!({"type": "FeatureCollection", "features": features,
        "truncated": cells.len() > MAX_OVERSHOOT_CELLS})
}
