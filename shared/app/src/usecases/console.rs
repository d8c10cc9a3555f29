//! What the operator console reads besides the alert API: who is signed
//! in and what they may do (`GET /v1/operator`), the recent alerts
//! (`GET /v1/alerts`), an alert's zone (`GET /v1/alerts/{id}/area`), how
//! texts travel (`POST /v1/messages:measure`) and the map's outlines.
//! Every rule stays where it is decided (the territory check in the
//! zone's validation, the segment count in the core): the console only
//! shows their answers.

use super::App;
use super::geography::jurisdiction_unit;
use crate::error::parse_body;
use crate::{AppError, format_ms};
use bealert_core::alert::AlertState;
use bealert_core::cap::Status;
use bealert_core::geography::Level;
use bealert_core::language::Language;
use bealert_core::operator::{Operator, Task};
use geo::Simplify;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How far back `GET /v1/alerts` looks, and how many it lists.
const LIST_WINDOW_MS: i64 = 7 * 86_400_000;
const LIST_LIMIT: usize = 100;

/// The person signed in, for the console's header and its menus.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorView {
    pub name: String,
    pub user: String,
    /// `national`, `province:<NIS>` or `municipality:<NIS>`.
    pub jurisdiction: String,
    /// The territory's unit (`None`: national, or its boundary not loaded).
    pub territory: Option<TerritoryView>,
    pub groups: Vec<String>,
    /// What this person may do ([`Task`]; the use cases check the same).
    pub may: Vec<Task>,
    /// The rights this person holds (`send`, `approve`, `contacts`,
    /// `halt`, `admin`): the console hides what they may not do.
    pub rights: Vec<bealert_core::operator::Right>,
    /// When the key this request came with stops working (RFC 3339;
    /// absent: a key made before keys expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_expires_at: Option<String>,
    /// Whether that is within 14 days: the console warns.
    pub key_expires_soon: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TerritoryView {
    pub level: Level,
    pub code: String,
    pub name: String,
    /// `[min lon, min lat, max lon, max lat]`.
    pub bbox: [f64; 4],
}

/// One line of `GET /v1/alerts`.
#[derive(Debug, Clone, Serialize)]
pub struct AlertSummary {
    pub id: String,
    pub state: AlertState,
    pub status: Status,
    pub event: String,
    pub operator: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub references: Option<String>,
    /// For an alert awaiting approval: the person who created it (they
    /// may not approve it), so the console offers approval to others only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// For an alert awaiting approval: whether the person asking may
    /// approve it (not its author).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub may_approve: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MeasureRequest {
    #[serde(default, deserialize_with = "bealert_core::error::present")]
    status: Option<Status>,
    messages: BTreeMap<Language, String>,
}

/// How one language's text travels.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// The text as it leaves, with the exercise or test marker.
    pub text: String,
    pub sms: bealert_core::sms::SmsInfo,
    pub cell_broadcast: bealert_core::broadcast::CbInfo,
    /// Why it cannot go by cell broadcast, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell_broadcast_problem: Option<String>,
}

/// The outlines the console draws, cached with the catalogue they were
/// made from (a unit loaded later makes new ones).
#[derive(Default)]
pub struct OutlineCache(tokio::sync::Mutex<Option<(String, Arc<Vec<u8>>)>>);

/// Simplification per level, in degrees (~250 m and ~80 m): enough for a
/// map of Belgium, a small part of the boundaries' weight.
fn tolerance(level: Level) -> f64 {
    match level {
        Level::Region | Level::Province => 0.003,
        _ => 0.001,
    }
}

impl App {
    /// `GET /v1/operator`.
    pub async fn operator_view(&self, operator: &Operator) -> Result<OperatorView, AppError> {
        let unit = jurisdiction_unit(self.ports.geography.as_ref(), &operator.jurisdiction).await?;
        Ok(OperatorView {
            name: operator.name.clone(),
            user: operator.user.clone(),
            jurisdiction: operator.jurisdiction.to_string(),
            territory: unit.map(|u| TerritoryView {
                level: u.level,
                code: u.code,
                name: u.names.label(),
                bbox: u.bbox,
            }),
            groups: operator.groups.clone(),
            may: operator.tasks(),
            rights: operator.rights.iter().collect(),
            key_expires_at: operator.key_expires_at_ms.map(crate::format_ms),
            key_expires_soon: operator.key_expires_soon(self.now_ms()),
        })
    }

    /// `GET /v1/alerts[?state=]`: the alerts of the last 7 days this
    /// person may see, newest first (at most 100).
    pub async fn list_alerts(
        &self,
        operator: &Operator,
        state: Option<&str>,
    ) -> Result<Vec<AlertSummary>, AppError> {
        let wanted = match state {
            None => None,
            Some(s) => Some(
                serde_json::from_value::<AlertState>(Value::String(s.into())).map_err(|_| {
                    AppError::Invalid(bealert_core::ValidationErrors::single(
                        "state",
                        format!(
                            "{s:?} is not an alert state; use one of draft, awaiting_approval, \
                             resolving, sending, sent, failed, cancelled, expired"
                        ),
                    ))
                })?,
            ),
        };
        let since = self.now_ms() - LIST_WINDOW_MS;
        let recent = self.ports.alerts.recent_alerts(since, LIST_LIMIT).await?;
        let mut out = Vec::new();
        for mut alert in recent {
            if wanted.is_some_and(|w| w != alert.state) {
                continue;
            }
            // The same visibility as reading one alert.
            if !self.may_see(operator, &alert).await? {
                continue;
            }
            self.expire_if_due(&mut alert).await?;
            if wanted.is_some_and(|w| w != alert.state) {
                continue;
            }
            // The author, read from the audit log for the few held alerts.
            let (created_by, may_approve) =
                if alert.state == AlertState::AwaitingApproval {
                    let audit = self.ports.alerts.audit(alert.id).await?;
                    let author = audit.iter().find(|e| e.action == "create");
                    (
                        author.map(|a| a.user.clone()),
                        Some(!author.is_some_and(|a| {
                            a.operator == operator.name && a.user == operator.user
                        })),
                    )
                } else {
                    (None, None)
                };
            out.push(AlertSummary {
                created_by,
                may_approve,
                id: alert.id.to_string(),
                state: alert.state,
                status: alert.spec.status,
                event: alert.spec.event,
                operator: alert.operator,
                created_at: format_ms(alert.created_at),
                references: alert.spec.references.map(|r| r.to_string()),
            });
        }
        Ok(out)
    }

    /// `GET /v1/alerts/{id}/area`: the alert's zone as a GeoJSON
    /// FeatureCollection (its polygons, and each circle as a point with
    /// `radius_km`).
    pub async fn alert_area(&self, operator: &Operator, id: &str) -> Result<Value, AppError> {
        let head = self.visible_alert(operator, id).await?;
        let alert = self.stored_alert(&head.id.to_string()).await?;
        let mut features = Vec::new();
        if !alert.spec.area.polygons.is_empty() {
            features.push(json!({"type": "Feature", "properties": {"kind": "zone"},
                "geometry": {"type": "MultiPolygon", "coordinates": alert.spec.area.polygons}}));
        }
        for c in &alert.spec.area.circles {
            features.push(json!({"type": "Feature",
                "properties": {"kind": "circle", "radius_km": c.radius_km},
                "geometry": {"type": "Point", "coordinates": [c.lon, c.lat]}}));
        }
        Ok(json!({"type": "FeatureCollection", "features": features}))
    }

    /// `POST /v1/messages:measure`: each text as it would leave, its SMS
    /// segments and cell-broadcast pages (the core's own counts).
    pub fn measure_messages(&self, body: &[u8]) -> Result<BTreeMap<Language, Measured>, AppError> {
        let req: MeasureRequest = parse_body(body)?;
        let status = req.status.unwrap_or(Status::Actual);
        Ok(req
            .messages
            .into_iter()
            .map(|(lang, text)| {
                let text = format!(
                    "{}{text}",
                    bealert_core::message::status_prefix(status, lang)
                );
                let measured = Measured {
                    sms: bealert_core::sms::analyse(&text),
                    cell_broadcast: bealert_core::broadcast::cb_pages(&text),
                    cell_broadcast_problem: bealert_core::broadcast::cb_problem(&text),
                    text,
                };
                (lang, measured)
            })
            .collect())
    }

    /// The console's map outlines: regions, provinces and every loaded
    /// municipality, simplified, as GeoJSON with `level`, `code` and
    /// `name`. Made once per catalogue.
    pub async fn outlines(&self) -> Result<Arc<Vec<u8>>, AppError> {
        let mut units: Vec<_> = self
            .ports
            .geography
            .units()
            .await?
            .into_iter()
            .filter(|u| {
                matches!(
                    u.level,
                    Level::Region | Level::Province | Level::Municipality
                )
            })
            .collect();
        units.sort_by(|a, b| (a.level, &a.code).cmp(&(b.level, &b.code)));
        let key: String = units.iter().map(|u| u.version.as_str()).collect();
        let mut cache = self.outlines.0.lock().await;
        if let Some((k, bytes)) = cache.as_ref()
            && *k == key
        {
            return Ok(bytes.clone());
        }
        let mut features = Vec::with_capacity(units.len());
        for info in units {
            let Some(unit) = self.ports.geography.unit(info.level, &info.code).await? else {
                continue;
            };
            let eps = tolerance(unit.level);
            let shape = tokio::task::spawn_blocking(move || simplified(&unit.polygons, eps))
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?;
            features.push(json!({"type": "Feature",
                "properties": {"level": info.level, "code": info.code, "name": info.names.label()},
                "geometry": {"type": "MultiPolygon", "coordinates": shape}}));
        }
        let bytes = Arc::new(
            serde_json::to_vec(&json!({"type": "FeatureCollection", "features": features}))
                .map_err(|e| AppError::Internal(e.to_string()))?,
        );
        *cache = Some((key, bytes.clone()));
        Ok(bytes)
    }
}

/// Douglas–Peucker per ring, coordinates to 4 decimals (~10 m); a ring
/// simplified below a triangle keeps its original points.
fn simplified(polygons: &[Vec<Vec<[f64; 2]>>], eps: f64) -> Vec<Vec<Vec<[f64; 2]>>> {
    let round = |v: f64| (v * 1e4).round() / 1e4;
    polygons
        .iter()
        .filter_map(|rings| {
            let out: Vec<Vec<[f64; 2]>> = rings
                .iter()
                .map(|ring| {
                    let line: geo::LineString<f64> = ring
                        .iter()
                        .map(|p| geo::coord! {x: p[0], y: p[1]})
                        .collect();
                    let s = line.simplify(eps);
                    if s.0.len() >= 4 { s.0 } else { line.0 }
                        .iter()
                        .map(|c| [round(c.x), round(c.y)])
                        .collect()
                })
                .collect();
            (!out.is_empty()).then_some(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::simplified;

    #[test]
    fn simplification_drops_points_on_a_line_and_keeps_small_rings() {
        let mut ring: Vec<[f64; 2]> = (0..=100).map(|i| [f64::from(i) * 0.0001, 0.0]).collect();
        ring.extend([[0.01, 0.01], [0.0, 0.01], [0.0, 0.0]]);
        let out = simplified(&[vec![ring]], 0.001);
        assert_eq!(out[0][0].len(), 5, "{:?}", out[0][0]);
        let tiny = vec![[0.0, 0.0], [0.00001, 0.0], [0.0, 0.00001], [0.0, 0.0]];
        let out = simplified(&[vec![tiny.clone()]], 0.001);
        assert_eq!(out[0][0].len(), 4);
    }
}
