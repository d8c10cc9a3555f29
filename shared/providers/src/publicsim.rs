//! A simulator of the public channels' outlets — a social webhook, a
//! siren controller with its acknowledgements, a digital sign network —
//! behind the same port as the real ones ([`PublicGateway`]). Outlets whose
//! URL is `sim` use it in the embedded home; [`router`] serves it over HTTP
//! with the contract of [`crate::public_http`], so it also stands in for
//! the real endpoints in tests.
//!
//! Like a real outlet it never publishes one key twice (a repeat is
//! answered from its record), and it can be told to be slow, to fail (a
//! number of times, or until told otherwise), to refuse, or — for sirens —
//! to lose a share of the acknowledgements ([`Behaviour`]).

use crate::netsim::Behaviour;
use async_trait::async_trait;
use bealert_app::ports::{GatewayError, PublicGateway, PublicMessage};
use bealert_core::broadcast::NetworkReport;
use bealert_core::outlet::{OutletKind, Tone};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One thing an outlet published.
#[derive(Debug, Clone, PartialEq)]
pub enum Published {
    Post {
        language: String,
        text: String,
    },
    Sound {
        tone: Tone,
        activated: u64,
        acknowledged: u64,
    },
    Show {
        cap: String,
    },
}

#[derive(Default)]
struct State {
    behaviour: HashMap<String, Behaviour>,
    /// Every key handled, by outlet, in order.
    published: HashMap<String, Vec<(String, Published)>>,
    requests: HashMap<String, u64>,
}

/// Every simulated outlet, by name.
#[derive(Clone, Default)]
pub struct PublicSimulator {
    state: Arc<Mutex<State>>,
    /// Where each publication is also written, one JSON line each (the
    /// embedded home's `outbox/public.jsonl`).
    log: Option<Arc<std::path::PathBuf>>,
}

impl PublicSimulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// A simulator that also appends what it publishes to `path` (JSON
    /// lines: `at`, `outlet`, `key` and what was posted, sounded or shown).
    pub fn logging_to(path: std::path::PathBuf) -> Self {
        Self {
            log: Some(Arc::new(path)),
            ..Self::default()
        }
    }

    fn write_log(&self, outlet: &str, key: &str, what: &Published) {
        let Some(path) = &self.log else { return };
        let mut line = serde_json::json!({
            "at": bealert_app::format_ms(bealert_app::now_ms()), "outlet": outlet, "key": key,
        });
        match what {
            Published::Post { language, text } => {
                line["post"] = serde_json::json!({"language": language, "text": text});
            }
            Published::Sound {
                tone,
                activated,
                acknowledged,
            } => {
                line["sound"] = serde_json::json!({"tone": tone, "activated": activated, "acknowledged": acknowledged});
            }
            Published::Show { cap } => line["cap"] = serde_json::json!(cap),
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path.as_ref())
            .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "could not write the public outbox");
        }
    }

    /// Sets how one outlet behaves from now on.
    pub fn set(&self, outlet: &str, behaviour: Behaviour) {
        self.lock().behaviour.insert(outlet.to_string(), behaviour);
    }

    /// Requests the outlet received (every attempt, repeats included).
    pub fn requests(&self, outlet: &str) -> u64 {
        self.lock().requests.get(outlet).copied().unwrap_or(0)
    }

    /// What the outlet published, once per key, in order.
    pub fn published(&self, outlet: &str) -> Vec<(String, Published)> {
        self.lock()
            .published
            .get(outlet)
            .cloned()
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn gate(&self, outlet: &str) -> Result<Behaviour, GatewayError> {
        let b = {
            let mut st = self.lock();
            *st.requests.entry(outlet.to_string()).or_default() += 1;
            st.behaviour.get(outlet).cloned().unwrap_or_default()
        };
        if !b.delay.is_zero() {
            tokio::time::sleep(b.delay).await;
        }
        if b.refuse {
            return Err(GatewayError::Permanent(format!(
                "{outlet} refused the message (simulated)"
            )));
        }
        if b.failures > 0 {
            let mut st = self.lock();
            if let Some(cur) = st.behaviour.get_mut(outlet)
                && cur.failures > 0
            {
                if cur.failures != u32::MAX {
                    cur.failures -= 1;
                }
                return Err(GatewayError::Retryable(format!(
                    "{outlet} is unreachable (simulated)"
                )));
            }
        }
        Ok(b)
    }

    /// Publishes one thing under `key` unless it was already: what is on record.
    fn record(&self, outlet: &str, key: &str, what: Published) -> Published {
        let mut st = self.lock();
        let list = st.published.entry(outlet.to_string()).or_default();
        if let Some((_, p)) = list.iter().find(|(k, _)| k == key) {
            return p.clone();
        }
        list.push((key.to_string(), what.clone()));
        tracing::info!(outlet, key, published = ?what, "published (simulated outlet)");
        self.write_log(outlet, key, &what);
        what
    }

    fn sound(&self, outlet: &str, key: &str, tone: Tone, sirens: u64, drop: f64) -> Published {
        let acknowledged = ((sirens as f64) * (1.0 - drop)).round() as u64;
        self.record(
            outlet,
            key,
            Published::Sound {
                tone,
                activated: sirens,
                acknowledged,
            },
        )
    }
}

#[async_trait]
impl PublicGateway for PublicSimulator {
    async fn publish(&self, m: &PublicMessage) -> Result<NetworkReport, GatewayError> {
        let name = &m.outlet.name;
        let b = self.gate(name).await?;
        if let Some(e) = m.too_late(bealert_app::now_ms()) {
            return Err(e);
        }
        Ok(match m.outlet.kind {
            OutletKind::Social => {
                for p in &m.posts {
                    self.record(
                        name,
                        &format!("{}:{}", m.key, p.language.code()),
                        Published::Post {
                            language: p.language.code().into(),
                            text: p.text.clone(),
                        },
                    );
                }
                let n = m.posts.len() as u64;
                NetworkReport::reached(n)
            }
            OutletKind::Siren => {
                let tone = m.tone.ok_or_else(|| {
                    GatewayError::Permanent("a siren message without a tone".into())
                })?;
                let sirens = u64::from(m.outlet.sirens.unwrap_or(1));
                match self.sound(name, &m.key, tone, sirens, b.drop) {
                    Published::Sound {
                        activated,
                        acknowledged,
                        ..
                    } => NetworkReport::sirens(sirens, activated, acknowledged),
                    _ => NetworkReport::default(),
                }
            }
            OutletKind::Sign => {
                let cap = m.cap.clone().unwrap_or_default();
                self.record(name, &m.key, Published::Show { cap });
                NetworkReport::reached(1)
            }
        })
    }
}

#[cfg(feature = "routers")]
/// The simulator as the outlets' HTTP endpoints: `POST /social/{name}`,
/// `/siren/{name}` and `/sign/{name}` (see [`crate::public_http`]).
pub fn router(sim: PublicSimulator) -> axum::Router {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;

    fn answer(r: Result<serde_json::Value, GatewayError>) -> Response {
        match r {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => {
                let status = match e {
                    GatewayError::Permanent(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    GatewayError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                (
                    status,
                    axum::Json(serde_json::json!({"error": e.to_string()})),
                )
                    .into_response()
            }
        }
    }
    fn key(headers: &HeaderMap) -> Result<String, GatewayError> {
        headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| GatewayError::Permanent("no Idempotency-Key".into()))
    }
    async fn social(
        State(sim): State<PublicSimulator>,
        Path(name): Path<String>,
        headers: HeaderMap,
        body: String,
    ) -> Response {
        answer(
            async {
                let key = key(&headers)?;
                sim.gate(&name).await?;
                let v: serde_json::Value = serde_json::from_str(&body)
                    .map_err(|e| GatewayError::Permanent(e.to_string()))?;
                let field = |f: &str| v[f].as_str().unwrap_or_default().to_string();
                sim.record(
                    &name,
                    &key,
                    Published::Post {
                        language: field("language"),
                        text: field("text"),
                    },
                );
                Ok(serde_json::json!({"id": key}))
            }
            .await,
        )
    }
    async fn siren(
        State(sim): State<PublicSimulator>,
        Path(name): Path<String>,
        headers: HeaderMap,
        body: String,
    ) -> Response {
        answer(
            async {
                let key = key(&headers)?;
                let b = sim.gate(&name).await?;
                let v: serde_json::Value = serde_json::from_str(&body)
                    .map_err(|e| GatewayError::Permanent(e.to_string()))?;
                let tone: Tone = serde_json::from_value(v["tone"].clone())
                    .map_err(|e| GatewayError::Permanent(format!("tone: {e}")))?;
                let sirens = v["sirens"].as_u64().unwrap_or(1);
                match sim.sound(&name, &key, tone, sirens, b.drop) {
                    Published::Sound {
                        activated,
                        acknowledged,
                        ..
                    } => Ok(
                        serde_json::json!({"activated": activated, "acknowledged": acknowledged}),
                    ),
                    _ => Err(GatewayError::Permanent("key reused".into())),
                }
            }
            .await,
        )
    }
    async fn sign(
        State(sim): State<PublicSimulator>,
        Path(name): Path<String>,
        headers: HeaderMap,
        body: String,
    ) -> Response {
        answer(
            async {
                let key = key(&headers)?;
                sim.gate(&name).await?;
                if !body.contains("urn:oasis:names:tc:emergency:cap:1.2") {
                    return Err(GatewayError::Permanent("not a CAP 1.2 message".into()));
                }
                sim.record(&name, &key, Published::Show { cap: body });
                Ok(serde_json::json!({"displays": 1}))
            }
            .await,
        )
    }
    axum::Router::new()
        .route("/social/{name}", post(social))
        .route("/siren/{name}", post(siren))
        .route("/sign/{name}", post(sign))
        .with_state(sim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bealert_app::ports::Post;
    use bealert_core::Language;
    use bealert_core::outlet::Outlet;

    fn outlet(kind: OutletKind, name: &str, url: &str) -> Outlet {
        let mut o: Outlet = serde_json::from_value(serde_json::json!({
            "name": name, "kind": kind, "url": url,
        }))
        .unwrap();
        if kind == OutletKind::Siren {
            o.position = Some([4.3, 51.2]);
            o.sirens = Some(10);
        }
        o
    }

    fn message(o: Outlet) -> PublicMessage {
        PublicMessage {
            key: format!("a1:{}", o.target()),
            alert_id: bealert_core::AlertId::new(),
            posts: vec![
                Post {
                    language: Language::Nl,
                    text: "Sluit ramen".into(),
                },
                Post {
                    language: Language::Fr,
                    text: "Fermez".into(),
                },
            ],
            tone: Some(Tone::Alert),
            cap: Some("<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"></alert>".into()),
            not_after: i64::MAX,
            outlet: o,
        }
    }

    /// The HTTP adapter against the simulator's HTTP endpoints: the same
    /// answers as the simulator in process, a repeat never published twice,
    /// failures temporary or final as told.
    #[tokio::test]
    async fn the_http_adapter_speaks_the_simulators_contract() {
        let sim = PublicSimulator::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(axum::serve(listener, router(sim.clone())).into_future());
        // Without the development switch a local endpoint is refused at
        // send time too (an outlet stored before the rule, or DNS changed),
        // and nothing reaches it.
        let strict = crate::public_http::HttpPublic::with_private_endpoints(
            std::time::Duration::from_secs(5),
            None,
            false,
        );
        let social = message(outlet(
            OutletKind::Social,
            "masto",
            &format!("{base}/social/masto"),
        ));
        let e = strict.publish(&social).await.unwrap_err();
        assert!(
            matches!(&e, GatewayError::Permanent(m) if m.contains("https")),
            "{e:?}"
        );
        assert_eq!(sim.requests("masto"), 0);
        let http = crate::public_http::HttpPublic::with_private_endpoints(
            std::time::Duration::from_secs(5),
            None,
            true,
        );
        let r = http.publish(&social).await.unwrap();
        assert_eq!((r.requested, r.delivered), (2, 2));
        http.publish(&social).await.unwrap();
        let posts = sim.published("masto");
        assert_eq!(posts.len(), 2, "{posts:?}");
        assert_eq!(
            posts[0].1,
            Published::Post {
                language: "nl".into(),
                text: "Sluit ramen".into()
            }
        );

        sim.set("port", "drop:0.3".parse().unwrap());
        let siren = message(outlet(
            OutletKind::Siren,
            "port",
            &format!("{base}/siren/port"),
        ));
        let r = http.publish(&siren).await.unwrap();
        assert_eq!(
            (r.requested, r.accepted, r.delivered, r.failed),
            (10, 10, 7, 3)
        );

        let sign = message(outlet(OutletKind::Sign, "vms", &format!("{base}/sign/vms")));
        assert_eq!(http.publish(&sign).await.unwrap().delivered, 1);
        let mut bad = sign.clone();
        bad.key = "other".into();
        bad.cap = Some("<html/>".into());
        assert!(matches!(
            http.publish(&bad).await,
            Err(GatewayError::Permanent(_))
        ));

        sim.set("vms", "fail:1".parse().unwrap());
        let again = PublicMessage {
            key: "a2:sign:vms".into(),
            ..sign.clone()
        };
        assert!(matches!(
            http.publish(&again).await,
            Err(GatewayError::Retryable(_))
        ));
        http.publish(&again).await.unwrap();
        assert_eq!(sim.published("vms").len(), 2);

        // A `sim` outlet goes to the simulator in process, where there is one.
        let with_sim = crate::public_http::HttpPublic::with_private_endpoints(
            std::time::Duration::from_secs(5),
            Some(sim.clone()),
            true,
        );
        let local = message(outlet(OutletKind::Social, "local", "sim"));
        with_sim.publish(&local).await.unwrap();
        assert_eq!(sim.published("local").len(), 2);
        assert!(matches!(
            http.publish(&local).await,
            Err(GatewayError::Permanent(_))
        ));
    }
}
