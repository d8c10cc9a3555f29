//! What anyone may see without a key: the public alerts in force (and
//! those that ended lately), their CAP, and an Atom feed of them — so a
//! citizen can check that a message is genuine, and digital signs, media
//! and aggregators can follow.

use super::App;
use crate::AppError;
use crate::ports::AlertRecord;
use bealert_core::alert::AlertState;
use bealert_core::cap::{MsgType, Scope, Status, brussels_rfc3339, brussels_short};
use bealert_core::{AlertId, Language};
use std::collections::HashSet;

/// How far back the page and the feed look.
pub const PUBLIC_WINDOW_MS: i64 = 7 * 86_400_000;
/// The most alerts listed.
pub const PUBLIC_LIMIT: usize = 200;

/// One public alert, as the page and the feed show it.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicAlert {
    pub id: AlertId,
    pub event: String,
    /// The issuing authority.
    pub authority: String,
    pub status: Status,
    pub msg_type: MsgType,
    pub all_clear: bool,
    pub references: Option<AlertId>,
    pub state: AlertState,
    /// Unix ms.
    pub sent_ms: i64,
    pub expires_ms: Option<i64>,
    /// The text in each language it has.
    pub texts: Vec<(Language, String)>,
}

impl PublicAlert {
    /// The text in `wanted` (else English, else the first it has).
    pub fn text(&self, wanted: Language) -> (Language, &str) {
        let pick = |l: Language| self.texts.iter().find(|(x, _)| *x == l);
        pick(wanted)
            .or_else(|| pick(Language::En))
            .or_else(|| self.texts.first())
            .map_or((wanted, ""), |(l, t)| (*l, t.as_str()))
    }

    pub fn sent_local(&self) -> String {
        brussels_short(self.sent_ms)
    }

    pub fn sent_rfc3339(&self) -> String {
        brussels_rfc3339(self.sent_ms)
    }

    pub fn expires_local(&self) -> Option<String> {
        self.expires_ms.map(brussels_short)
    }
}

/// The public alerts of the last [`PUBLIC_WINDOW_MS`]: those in force, and
/// the others (ended, expired, cancelled, or a cancel or all-clear).
#[derive(Debug, Clone, Default)]
pub struct PublicAlerts {
    pub in_force: Vec<PublicAlert>,
    pub ended: Vec<PublicAlert>,
    /// Unix ms of the newest alert listed.
    pub updated_ms: Option<i64>,
}

fn public(r: &AlertRecord) -> PublicAlert {
    PublicAlert {
        id: r.id,
        event: r.spec.event.clone(),
        authority: r.operator.clone(),
        status: r.spec.status,
        msg_type: r.spec.msg_type,
        all_clear: r.spec.all_clear,
        references: r.spec.references,
        state: r.state,
        sent_ms: r.created_at,
        expires_ms: r.spec.expires,
        texts: r
            .spec
            .messages
            .0
            .iter()
            .map(|(l, t)| (*l, t.clone()))
            .collect(),
    }
}

impl App {
    /// `GET /alerts` and `GET /feed.atom`: public alerts only; nothing
    /// awaiting approval, rejected or restricted is ever shown.
    pub async fn public_alerts(&self) -> Result<PublicAlerts, AppError> {
        let now = self.now_ms();
        let recent = self
            .ports
            .alerts
            .recent_alerts(now - PUBLIC_WINDOW_MS, PUBLIC_LIMIT)
            .await?;
        let shown: Vec<&AlertRecord> = recent
            .iter()
            .filter(|r| r.spec.scope == Scope::Public)
            .filter(|r| {
                matches!(
                    r.state,
                    AlertState::Resolving
                        | AlertState::Sending
                        | AlertState::Sent
                        | AlertState::Cancelled
                        | AlertState::Expired
                ) && !was_never_sent(r)
            })
            .collect();
        // Alerts a cancel or an all-clear ended.
        let ended_by_follow_up: HashSet<AlertId> = shown
            .iter()
            .filter(|r| r.spec.msg_type == MsgType::Cancel || r.spec.all_clear)
            .filter_map(|r| r.spec.references)
            .collect();
        let mut out = PublicAlerts {
            updated_ms: shown.iter().map(|r| r.created_at).max(),
            ..PublicAlerts::default()
        };
        for r in shown {
            let in_force = r.state.may_send() || r.state == AlertState::Sent;
            let in_force = in_force
                && !r.spec.expired_at(now)
                && r.spec.msg_type != MsgType::Cancel
                && !r.spec.all_clear
                && !ended_by_follow_up.contains(&r.id);
            if in_force {
                out.in_force.push(public(r));
            } else {
                out.ended.push(public(r));
            }
        }
        Ok(out)
    }

    /// Where citizens reach the server, when the signup knows it.
    pub fn public_url(&self) -> Option<String> {
        self.signup().map(|s| s.part().config.public_url.clone())
    }

    /// The self-service page every alert e-mail links to.
    pub fn manage_url(&self) -> Option<String> {
        self.config
            .public_url
            .clone()
            .or_else(|| self.public_url())
            .map(|u| format!("{}/manage", u.trim_end_matches('/')))
    }

    /// `GET /alerts/{id}.cap`: a public alert's CAP, for anyone (404 for
    /// any other alert, so nothing else can be probed).
    pub async fn public_cap(&self, id: &str) -> Result<String, AppError> {
        let not_found = || AppError::NotFound(format!("no public alert has id {id:?}"));
        let alert = self.stored_alert(id).await.map_err(|_| not_found())?;
        if alert.spec.scope != Scope::Public || was_never_sent(&alert) {
            return Err(not_found());
        }
        self.cap_of(&alert).await
    }
}

/// Held for approval, rejected, or a draft: never public.
fn was_never_sent(r: &AlertRecord) -> bool {
    matches!(r.state, AlertState::Draft | AlertState::AwaitingApproval)
        || (r.state == AlertState::Cancelled && r.shards_total.is_none())
}

/// The Atom feed of the public alerts (RFC 4287), each entry linking its
/// CAP (`application/cap+xml`) as the CAP feed convention does. `base` is
/// where the server is reached (`https://alerts.example.be`).
pub fn atom_feed(alerts: &PublicAlerts, base: &str) -> String {
    use quick_xml::Writer;
    use quick_xml::events::{BytesDecl, BytesText, Event};
    let base = base.trim_end_matches('/');
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let text = |w: &mut Writer<Vec<u8>>, name: &str, value: &str| {
        let _ = w
            .create_element(name)
            .write_text_content(BytesText::new(value));
    };
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = w
        .create_element("feed")
        .with_attribute(("xmlns", "http://www.w3.org/2005/Atom"))
        .write_inner_content(|w| {
            text(w, "id", &format!("{base}/feed.atom"));
            text(w, "title", "bealert: public alerts");
            text(
                w,
                "updated",
                &brussels_rfc3339(alerts.updated_ms.unwrap_or_else(crate::now_ms)),
            );
            let _ = w
                .create_element("link")
                .with_attribute(("rel", "self"))
                .with_attribute(("href", format!("{base}/feed.atom").as_str()))
                .write_empty();
            let _ = w
                .create_element("link")
                .with_attribute(("rel", "alternate"))
                .with_attribute(("type", "text/html"))
                .with_attribute(("href", format!("{base}/alerts").as_str()))
                .write_empty();
            for (a, in_force) in alerts
                .in_force
                .iter()
                .map(|a| (a, true))
                .chain(alerts.ended.iter().map(|a| (a, false)))
            {
                let _ = w.create_element("entry").write_inner_content(|w| {
                    text(w, "id", &format!("urn:uuid:{}", a.id));
                    let marker = match a.status {
                        Status::Actual => "",
                        Status::Exercise => "EXERCISE - ",
                        Status::Test => "TEST - ",
                    };
                    text(w, "title", &format!("{marker}{}", a.event));
                    text(w, "updated", &a.sent_rfc3339());
                    text(w, "published", &a.sent_rfc3339());
                    let _ = w.create_element("author").write_inner_content(|w| {
                        text(w, "name", &a.authority);
                        Ok(())
                    });
                    let (_, summary) = a.text(Language::En);
                    text(w, "summary", summary);
                    let _ = w
                        .create_element("link")
                        .with_attribute(("rel", "alternate"))
                        .with_attribute(("type", "application/cap+xml"))
                        .with_attribute(("href", format!("{base}/alerts/{}.cap", a.id).as_str()))
                        .write_empty();
                    // What a sign or aggregator filters on, as Atom
                    // categories (CAP's own elements are not global in its
                    // schema, so an Atom document cannot carry them validly).
                    let cap = bealert_core::cap_xml::NAMESPACE;
                    for (scheme, term) in [
                        (format!("{cap}#status"), a.status.as_str()),
                        (format!("{cap}#msgType"), a.msg_type.as_str()),
                        (
                            "urn:bealert:in-force".to_string(),
                            if in_force { "in-force" } else { "ended" },
                        ),
                    ] {
                        let _ = w
                            .create_element("category")
                            .with_attribute(("scheme", scheme.as_str()))
                            .with_attribute(("term", term))
                            .write_empty();
                    }
                    Ok(())
                });
            }
            Ok(())
        });
    String::from_utf8(w.into_inner()).unwrap_or_default()
}
