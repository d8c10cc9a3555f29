//! The public list of alerts (`/alerts`, nl/fr/de/en, no key), each
//! alert's CAP (`/alerts/{id}.cap`) and the Atom feed (`/feed.atom`).

use super::page_text::negotiate;
use super::problem::Problem;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bealert_app::App;
use bealert_app::usecases::public::{PublicAlert, atom_feed};
use bealert_core::Language;
use bealert_core::alert::AlertState;
use bealert_core::cap::{MsgType, Status};
use std::collections::HashMap;
use std::sync::Arc;

pub fn routes() -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route("/alerts", get(page))
        .route("/alerts/{file}", get(cap))
        .route("/feed.atom", get(feed))
}

struct Words {
    lang: &'static str,
    title: &'static str,
    intro: &'static str,
    switch_label: &'static str,
    in_force: &'static str,
    ended: &'static str,
    none: &'static str,
    none_ended: &'static str,
    authority: &'static str,
    sent: &'static str,
    expires: &'static str,
    state: &'static str,
    cap: &'static str,
    feed: &'static str,
    signup: &'static str,
    exercise: &'static str,
    test: &'static str,
    cancel: &'static str,
    update: &'static str,
    all_clear: &'static str,
    states: [&'static str; 4],
}

fn words(l: Language) -> &'static Words {
    match l {
        Language::Nl => &Words {
            lang: "nl",
            title: "Alarmen van de overheid",
            intro: "Hier staan alle openbare alarmen van de afgelopen zeven dagen. Kreeg u een bericht dat hier niet staat, dan komt het niet van bealert.",
            switch_label: "Taal",
            in_force: "Nu van kracht",
            ended: "Afgelopen of ingetrokken",
            none: "Er is nu geen alarm van kracht.",
            none_ended: "Geen.",
            authority: "Uitgegeven door",
            sent: "Verstuurd",
            expires: "Geldig tot",
            state: "Stand",
            cap: "Het bericht in CAP 1.2",
            feed: "Atom-feed",
            signup: "Inschrijven voor alarmen",
            exercise: "OEFENING",
            test: "TEST",
            cancel: "INGETROKKEN: ",
            update: "UPDATE: ",
            all_clear: "EINDE ALARM: ",
            states: ["wordt verstuurd", "verstuurd", "ingetrokken", "verlopen"],
        },
        Language::Fr => &Words {
            lang: "fr",
            title: "Alertes des autorités",
            intro: "Voici toutes les alertes publiques des sept derniers jours. Si vous avez reçu un message qui n'y figure pas, il ne vient pas de bealert.",
            switch_label: "Langue",
            in_force: "En vigueur",
            ended: "Terminées ou annulées",
            none: "Aucune alerte n'est en vigueur.",
            none_ended: "Aucune.",
            authority: "Émise par",
            sent: "Envoyée",
            expires: "Valable jusqu'au",
            state: "État",
            cap: "Le message en CAP 1.2",
            feed: "Flux Atom",
            signup: "S'inscrire aux alertes",
            exercise: "EXERCICE",
            test: "TEST",
            cancel: "ANNULÉE : ",
            update: "MISE À JOUR : ",
            all_clear: "FIN D'ALERTE : ",
            states: ["en cours d'envoi", "envoyée", "annulée", "expirée"],
        },
        Language::De => &Words {
            lang: "de",
            title: "Warnungen der Behörden",
            intro: "Hier stehen alle öffentlichen Warnungen der letzten sieben Tage. Steht eine Nachricht, die Sie erhalten haben, nicht hier, stammt sie nicht von bealert.",
            switch_label: "Sprache",
            in_force: "Derzeit in Kraft",
            ended: "Beendet oder aufgehoben",
            none: "Derzeit ist keine Warnung in Kraft.",
            none_ended: "Keine.",
            authority: "Herausgegeben von",
            sent: "Gesendet",
            expires: "Gültig bis",
            state: "Stand",
            cap: "Die Nachricht in CAP 1.2",
            feed: "Atom-Feed",
            signup: "Für Warnungen anmelden",
            exercise: "ÜBUNG",
            test: "TEST",
            cancel: "AUFGEHOBEN: ",
            update: "AKTUALISIERUNG: ",
            all_clear: "ENTWARNUNG: ",
            states: ["wird gesendet", "gesendet", "aufgehoben", "abgelaufen"],
        },
        Language::En => &Words {
            lang: "en",
            title: "Alerts from the authorities",
            intro: "Every public alert of the last seven days is here. A message you received that is not listed here did not come from bealert.",
            switch_label: "Language",
            in_force: "In force",
            ended: "Ended or cancelled",
            none: "No alert is in force.",
            none_ended: "None.",
            authority: "Issued by",
            sent: "Sent",
            expires: "Valid until",
            state: "State",
            cap: "The message in CAP 1.2",
            feed: "Atom feed",
            signup: "Sign up for alerts",
            exercise: "EXERCISE",
            test: "TEST",
            cancel: "CANCELLED: ",
            update: "UPDATE: ",
            all_clear: "ALL CLEAR: ",
            states: ["being sent", "sent", "cancelled", "expired"],
        },
    }
}

struct View {
    id: String,
    exercise: bool,
    test: bool,
    kind: &'static str,
    event: String,
    lang: &'static str,
    text: String,
    authority: String,
    sent_rfc3339: String,
    sent_local: String,
    expires_local: Option<String>,
    state: &'static str,
}

fn view(a: &PublicAlert, l: Language, t: &Words) -> View {
    let (lang, text) = a.text(l);
    View {
        id: a.id.to_string(),
        exercise: a.status == Status::Exercise,
        test: a.status == Status::Test,
        kind: match (a.msg_type, a.all_clear) {
            (MsgType::Cancel, _) => t.cancel,
            (_, true) => t.all_clear,
            (MsgType::Update, false) => t.update,
            (MsgType::Alert, false) => "",
        },
        event: a.event.clone(),
        lang: lang.code(),
        text: text.to_string(),
        authority: a.authority.clone(),
        sent_rfc3339: a.sent_rfc3339(),
        sent_local: a.sent_local(),
        expires_local: a.expires_local(),
        state: match a.state {
            AlertState::Sent => t.states[1],
            AlertState::Cancelled => t.states[2],
            AlertState::Expired => t.states[3],
            _ => t.states[0],
        },
    }
}

#[derive(Template)]
#[template(path = "public_alerts.html")]
struct PageTemplate<'a> {
    t: &'a Words,
    in_force: Vec<View>,
    ended: Vec<View>,
}

async fn page(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let l = negotiate(q.get("lang").map(String::as_str), accept);
    let t = words(l);
    match app.public_alerts().await {
        Ok(alerts) => {
            let page = PageTemplate {
                t,
                in_force: alerts.in_force.iter().map(|a| view(a, l, t)).collect(),
                ended: alerts.ended.iter().map(|a| view(a, l, t)).collect(),
            };
            super::page::html(StatusCode::OK, page.render())
        }
        Err(e) => Problem::from(e).into_response(),
    }
}

async fn cap(State(app): State<Arc<App>>, Path(file): Path<String>) -> Response {
    let Some(id) = file.strip_suffix(".cap") else {
        return Problem::new(
            StatusCode::NOT_FOUND,
            format!("/alerts/{file} is not a page; an alert's CAP is /alerts/<id>.cap"),
        )
        .into_response();
    };
    match app.public_cap(id).await {
        Ok(xml) => (
            [
                (header::CONTENT_TYPE, "application/cap+xml; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=60"),
            ],
            xml,
        )
            .into_response(),
        Err(e) => Problem::from(e).into_response(),
    }
}

/// Where the server is reached, for the feed's absolute links.
fn base(app: &App, headers: &HeaderMap) -> String {
    if let Some(url) = app.public_url() {
        return url;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

async fn feed(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    match app.public_alerts().await {
        Ok(alerts) => (
            [
                (header::CONTENT_TYPE, "application/atom+xml; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=30"),
            ],
            atom_feed(&alerts, &base(&app, &headers)),
        )
            .into_response(),
        Err(e) => Problem::from(e).into_response(),
    }
}
