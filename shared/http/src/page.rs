//! The citizens' signup page: server-rendered HTML (askama, auto-escaped)
//! in nl, fr, de and en, that works without JavaScript. Steps: the form,
//! the points found for the addresses (to confirm), the codes, done.
//!
//! No cookies and no third-party requests: forms carry a signed,
//! timestamped token and cross-site posts are refused (`Sec-Fetch-Site`,
//! `Origin`); every answer has a strict Content-Security-Policy.

use super::page_text::{Texts, negotiate, texts};
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bealert_app::App;
use bealert_app::AppError;
use bealert_app::ports::{AddressQuery, Place, Precision};
use bealert_app::usecases::signup::{
    HumanProof, NOT_OFFERED, ProofOfWork, RegistrationView, SignupApp, SignupRequest,
};
use bealert_core::Language;
use bealert_core::phone_line::{Line, line};
use bealert_core::signup::ContactKind;
use bealert_core::subscriber::{AddressInput, normalise_email, normalise_phone};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

const CSS: &str = include_str!("../static/signup.css");
const JS: &str = include_str!("../static/signup.js");
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// How long a page's form stays usable.
const FORM_TTL_MS: i64 = bealert_app::usecases::signup::FORM_TTL_MS;
const MAX_ADDRESSES: usize = bealert_core::subscriber::MAX_ADDRESSES;

pub fn routes() -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route("/", get(form_page))
        .route("/signup", post(submit))
        .route("/signup/confirm", post(confirm))
        .route("/signup/verify", post(verify))
        .route(
            "/static/signup.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/static/signup.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// An HTML answer with the page's security headers.
pub(super) fn html(status: StatusCode, body: Result<String, askama::Error>) -> Response {
    let Ok(body) = body else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page could not be rendered",
        )
            .into_response();
    };
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    res
}

pub(super) type Fields = HashMap<String, String>;

struct AddrView {
    i: usize,
    section: String,
    label: String,
    street: String,
    postal: String,
    town: String,
    lat: String,
    lon: String,
    error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "form.html")]
struct FormPage<'a> {
    t: &'static Texts,
    csrf: String,
    values: &'a Fields,
    /// (field id, message), in page order.
    errors: Vec<(String, &'static str)>,
    addresses: Vec<AddrView>,
    more_open: bool,
    languages: [(&'static str, &'static str); 4],
    chosen_language: &'a str,
}

impl FormPage<'_> {
    fn val(&self, key: &str) -> &str {
        self.values.get(key).map_or("", String::as_str)
    }
    fn err(&self, key: &str) -> Option<&'static str> {
        self.errors.iter().find(|(k, _)| k == key).map(|(_, m)| *m)
    }
    fn checked(&self, key: &str) -> bool {
        self.values.get(key).is_some_and(|v| v == "on")
    }
}

struct PlaceView {
    name: String,
    label: String,
    lat: String,
    lon: String,
    precision: &'static str,
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    t: &'static Texts,
    places: Vec<PlaceView>,
    hidden: Vec<(String, String)>,
    needs_pow: bool,
}

struct ContactView {
    kind: &'static str,
    label: &'static str,
    to: String,
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage {
    t: &'static Texts,
    id: String,
    token: String,
    contacts: Vec<ContactView>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "done.html")]
struct DonePage {
    t: &'static Texts,
    id: String,
    token: String,
    channels: Vec<&'static str>,
    pending: Vec<&'static str>,
}

pub(super) const LANGUAGES: [(&str, &str); 4] = [
    ("nl", "Nederlands"),
    ("fr", "Français"),
    ("de", "Deutsch"),
    ("en", "English"),
];

pub(super) fn page_language(
    fields: Option<&Fields>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Language {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let from_form = fields.and_then(|f| f.get("lang")).map(String::as_str);
    negotiate(from_form.or(query), accept)
}

pub(super) fn csrf_token(app: &App) -> String {
    let issued = bealert_app::now_ms().to_string();
    match app.signup() {
        Some(s) => format!("{issued}.{}", s.part().token("csrf", &issued)),
        None => String::new(),
    }
}

/// A post from this site's own page, with a fresh token.
pub(super) fn check_origin(app: &App, headers: &HeaderMap, fields: &Fields) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| s != "same-origin" && s != "none") {
        return false;
    }
    if let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) && origin != "null"
        && origin.split("://").nth(1) != Some(host)
    {
        return false;
    }
    let Some((issued, mac)) = fields.get("csrf").and_then(|t| t.split_once('.')) else {
        return false;
    };
    let Ok(at) = issued.parse::<i64>() else {
        return false;
    };
    let fresh = (0..FORM_TTL_MS).contains(&(bealert_app::now_ms() - at));
    fresh
        && app
            .signup()
            .is_some_and(|s| s.part().check_token("csrf", issued, mac))
}

fn form_response(
    app: &App,
    t: &'static Texts,
    values: &Fields,
    errors: Vec<(String, &'static str)>,
    address_errors: &BTreeMap<usize, &'static str>,
) -> Response {
    let get = |k: String| values.get(&k).cloned().unwrap_or_default();
    let addresses: Vec<AddrView> = (0..MAX_ADDRESSES)
        .map(|i| AddrView {
            i,
            section: format!("section-a{i}"),
            label: get(format!("a{i}_label")),
            street: get(format!("a{i}_street")),
            postal: get(format!("a{i}_postal")),
            town: get(format!("a{i}_town")),
            lat: get(format!("a{i}_lat")),
            lon: get(format!("a{i}_lon")),
            error: address_errors.get(&i).copied(),
        })
        .collect();
    let more_open = addresses[1..].iter().any(|a| {
        !(a.street.is_empty() && a.postal.is_empty() && a.town.is_empty() && a.label.is_empty())
    });
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let chosen = values.get("language").map_or(t.lang, String::as_str);
    let page = FormPage {
        t,
        csrf: csrf_token(app),
        values,
        errors,
        addresses,
        more_open,
        languages: LANGUAGES,
        chosen_language: chosen,
    };
    html(status, page.render())
}

async fn form_page(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if app.signup().is_none() {
        return super::problem::Problem::new(StatusCode::NOT_FOUND, NOT_OFFERED).into_response();
    }
    let t = texts(page_language(
        None,
        query.get("lang").map(String::as_str),
        &headers,
    ));
    let mut values = Fields::new();
    values.insert("language".into(), t.lang.into());
    form_response(&app, t, &values, Vec::new(), &BTreeMap::new())
}

/// A fresh, empty form that says the last one expired (or came from elsewhere).
fn expired_form(app: &App, t: &'static Texts) -> Response {
    let mut values = Fields::new();
    values.insert("language".into(), t.lang.into());
    form_response(
        app,
        t,
        &values,
        vec![("summary".into(), t.err_expired_form)],
        &BTreeMap::new(),
    )
}

/// The channels ticked on a form (checkboxes `sms`, `voice`, `email_channel`).
pub(super) fn channels_from(fields: &Fields) -> Vec<String> {
    [
        ("sms", "sms"),
        ("voice", "voice"),
        ("email_channel", "email"),
    ]
    .into_iter()
    .filter(|(field, _)| fields.get(*field).is_some_and(|v| v == "on"))
    .map(|(_, name)| name.to_string())
    .collect()
}

pub(super) fn limits_ok(fields: &Fields) -> bool {
    fields.len() <= 64 && fields.iter().all(|(k, v)| k.len() <= 32 && v.len() <= 512)
}

/// The form's checks, in the page's language: (field id, message) in page
/// order, the address errors by index, and the places found.
async fn check_form(
    signup: SignupApp<'_>,
    t: &'static Texts,
    f: &Fields,
) -> (
    Vec<(String, &'static str)>,
    BTreeMap<usize, &'static str>,
    Vec<(usize, Place)>,
) {
    let mut errors: Vec<(String, &'static str)> = Vec::new();
    let get = |k: &str| f.get(k).map_or("", |v| v.trim());
    let too_long = |k: &str, max: usize| get(k).chars().count() > max;
    let (phone, email) = (get("phone"), get("email"));
    let mut has_phone = false;
    if too_long("phone", 32) {
        errors.push(("phone".into(), t.err_too_long));
    } else if !phone.is_empty() {
        match normalise_phone(phone) {
            Ok(p) => {
                has_phone = true;
                let allowed = &signup.part().config.allowed_country_codes;
                if !bealert_core::signup::country_code(&p).is_some_and(|c| allowed.contains(&c)) {
                    errors.push(("phone".into(), t.err_phone_country));
                } else {
                    match line(&p) {
                        Line::Special => errors.push(("phone".into(), t.err_phone_special)),
                        Line::Fixed if f.get("sms").is_some_and(|v| v == "on") => {
                            errors.push(("channels".into(), t.err_landline_sms));
                        }
                        _ => {}
                    }
                }
            }
            Err(_) => errors.push(("phone".into(), t.err_phone)),
        }
    }
    let mut has_email = false;
    if too_long("email", 254) {
        errors.push(("email".into(), t.err_too_long));
    } else if !email.is_empty() {
        match normalise_email(email) {
            Ok(_) => has_email = true,
            Err(_) => errors.push(("email".into(), t.err_email)),
        }
    }
    if phone.is_empty() && email.is_empty() {
        errors.push(("phone".into(), t.err_contact));
    }
    let on = |k: &str| f.get(k).is_some_and(|v| v == "on");
    if !(on("sms") || on("voice") || on("email_channel")) {
        errors.push(("channels".into(), t.err_channels));
    } else if (on("sms") || on("voice")) && !has_phone && phone.is_empty() {
        errors.push(("channels".into(), t.err_channel_needs_phone));
    } else if on("email_channel") && !has_email && email.is_empty() {
        errors.push(("channels".into(), t.err_channel_needs_email));
    }

    let mut address_errors = BTreeMap::new();
    let mut places = Vec::new();
    for i in 0..MAX_ADDRESSES {
        let k = |s: &str| format!("a{i}_{s}");
        let (street, postal, town) = (get(&k("street")), get(&k("postal")), get(&k("town")));
        let (lat, lon) = (get(&k("lat")), get(&k("lon")));
        if too_long(&k("label"), 64)
            || too_long(&k("street"), 120)
            || too_long(&k("postal"), 10)
            || too_long(&k("town"), 80)
        {
            address_errors.insert(i, t.err_too_long);
            continue;
        }
        // A point the browser gave (only the script sets these fields).
        if let (Ok(lat), Ok(lon)) = (lat.parse::<f64>(), lon.parse::<f64>())
            && (-90.0..=90.0).contains(&lat)
            && (-180.0..=180.0).contains(&lon)
        {
            {
                places.push((
                    i,
                    Place {
                        lat,
                        lon,
                        label: String::new(),
                        precision: Precision::Device,
                    },
                ));
                continue;
            }
        }
        if street.is_empty() && postal.is_empty() && town.is_empty() {
            continue;
        }
        let query = AddressQuery {
            street: (!street.is_empty()).then(|| street.to_string()),
            postal_code: (!postal.is_empty()).then(|| postal.to_string()),
            municipality: (!town.is_empty()).then(|| town.to_string()),
        };
        let found = signup
            .part()
            .ports
            .geocoder
            .geocode(&query)
            .await
            .unwrap_or_default();
        match found.into_iter().next() {
            Some(p) => places.push((i, p)),
            None => {
                address_errors.insert(i, t.err_address_not_found);
            }
        }
    }
    if places.is_empty() && address_errors.is_empty() {
        address_errors.insert(0, t.err_address_missing);
    }
    for (i, m) in &address_errors {
        errors.push((format!("a{i}-postal"), m));
    }
    if !on("consent") {
        errors.push(("consent".into(), t.err_consent));
    }
    (errors, address_errors, places)
}

async fn submit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let t = texts(page_language(Some(&fields), None, &headers));
    if !limits_ok(&fields) || !check_origin(&app, &headers, &fields) {
        return expired_form(&app, t);
    }
    // A server without the signup has no form token, so never gets here.
    let Some(signup) = app.signup() else {
        return expired_form(&app, t);
    };
    if fields.contains_key("edit") {
        let kept: Fields = fields
            .into_iter()
            .filter(|(k, _)| !(k.starts_with('g') && (k.ends_with("_lat") || k.ends_with("_lon"))))
            .collect();
        return form_response(&app, t, &kept, Vec::new(), &BTreeMap::new());
    }
    let (errors, address_errors, places) = check_form(signup, t, &fields).await;
    if !errors.is_empty() {
        return form_response(&app, t, &fields, errors, &address_errors);
    }
    // Everything the confirm step posts back, with the points found.
    let mut hidden: BTreeMap<String, String> = fields
        .iter()
        .filter(|(k, _)| !k.starts_with("pow_") && k.as_str() != "edit")
        .map(|(k, v)| (k.clone(), v.trim().to_string()))
        .collect();
    let mut views = Vec::new();
    for (i, p) in &places {
        // The points found travel as g*_ fields: "Change" drops them, so a
        // corrected postal code is looked up again.
        hidden.insert(format!("g{i}_lat"), format!("{:.5}", p.lat));
        hidden.insert(format!("g{i}_lon"), format!("{:.5}", p.lon));
        let name = fields
            .get(&format!("a{i}_label"))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty());
        views.push(PlaceView {
            name: name.map_or_else(|| format!("{} {}", t.address_n, i + 1), str::to_string),
            label: if p.label.is_empty() {
                t.location_found.to_string()
            } else {
                p.label.clone()
            },
            lat: format!("{:.5}", p.lat),
            lon: format!("{:.5}", p.lon),
            precision: match p.precision {
                Precision::Address | Precision::Street => t.precision_address,
                Precision::Municipality => t.precision_municipality,
                Precision::Region => t.precision_region,
                Precision::Device => t.precision_device,
            },
        });
    }
    let on = |k: &str| fields.get(k).is_some_and(|v| v == "on");
    let needs_pow =
        !fields.get("phone").is_none_or(|p| p.trim().is_empty()) && (on("sms") || on("voice"));
    html(
        StatusCode::OK,
        ConfirmPage {
            t,
            places: views,
            hidden: hidden.into_iter().collect(),
            needs_pow,
        }
        .render(),
    )
}

fn request_from(fields: &Fields, t: &Texts) -> SignupRequest {
    let get = |k: &str| {
        fields
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let on = |k: &str| fields.get(k).is_some_and(|v| v == "on");
    let channels = channels_from(fields);
    let addresses = (0..MAX_ADDRESSES)
        .filter_map(|i| {
            let lat = get(&format!("g{i}_lat"))?.parse().ok()?;
            let lon = get(&format!("g{i}_lon"))?.parse().ok()?;
            Some(AddressInput {
                label: get(&format!("a{i}_label")),
                lat,
                lon,
            })
        })
        .collect();
    let proof_of_work = match (get("pow_challenge"), get("pow_nonce")) {
        (Some(challenge), Some(nonce)) => Some(ProofOfWork { challenge, nonce }),
        _ => None,
    };
    SignupRequest {
        language: get("language").unwrap_or_else(|| t.lang.to_string()),
        phone: get("phone"),
        email: get("email"),
        channels,
        addresses,
        consent: on("consent"),
        proof_of_work,
        invitation: get("invitation"),
    }
}

async fn confirm(
    State(app): State<Arc<App>>,
    client: Option<axum::Extension<super::limit::ClientIp>>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let t = texts(page_language(Some(&fields), None, &headers));
    if !limits_ok(&fields) || !check_origin(&app, &headers, &fields) {
        return expired_form(&app, t);
    }
    // A server without the signup has no form token, so never gets here.
    let Some(signup) = app.signup() else {
        return expired_form(&app, t);
    };
    let request = request_from(&fields, t);
    // No script ran: the form itself (old enough, used once, within the
    // hour's no-script budget) stands in for the proof of work. Nothing
    // waits here.
    let proof = if request.proof_of_work.is_some() {
        HumanProof::ProofOfWork
    } else {
        HumanProof::NoScriptForm(fields.get("csrf").cloned().unwrap_or_default())
    };
    match signup
        .signup_with(request, client.map(|axum::Extension(c)| c.0), proof)
        .await
    {
        Ok(view) => code_or_done(signup, t, &view, None).await,
        Err(e) => {
            tracing::info!(error = %e, "signup page: refused");
            let error = match &e {
                AppError::Invalid(v) if v.0.iter().any(|f| f.path == "form") => {
                    return expired_form(&app, t);
                }
                AppError::Invalid(v) if v.0.iter().any(|f| f.path == "invitation") => {
                    ("invitation".to_string(), t.err_invitation)
                }
                AppError::Invalid(v)
                    if v.0
                        .iter()
                        .any(|f| f.path == "phone" && f.message.contains("special service")) =>
                {
                    ("phone".to_string(), t.err_phone_special)
                }
                AppError::Invalid(v) if v.0.iter().any(|f| f.path == "phone") => {
                    ("phone".to_string(), t.err_phone_country)
                }
                AppError::Invalid(v) if v.0.iter().any(|f| f.path == "channels") => {
                    ("channels".to_string(), t.err_landline_sms)
                }
                AppError::TooManyRequests(m) if m.contains("after it was shown") => {
                    ("summary".into(), t.err_too_fast)
                }
                AppError::Invalid(v) if v.0.iter().any(|f| f.path.starts_with("proof_of_work")) => {
                    ("summary".into(), t.err_expired_form)
                }
                AppError::TooManyRequests(_) => ("summary".into(), t.err_too_many),
                _ => ("summary".into(), t.err_other),
            };
            form_response(&app, t, &fields, vec![error], &BTreeMap::new())
        }
    }
}

async fn code_or_done(
    signup: SignupApp<'_>,
    t: &'static Texts,
    view: &RegistrationView,
    error: Option<String>,
) -> Response {
    let token = signup.part().token("registration", &view.id);
    let registration = signup
        .registration_contacts(&view.id)
        .await
        .unwrap_or_default();
    if view.unverified.is_empty() {
        let channels = registration
            .1
            .iter()
            .map(|c| match c {
                bealert_core::Channel::Sms => t.sms,
                bealert_core::Channel::Voice => t.voice,
                bealert_core::Channel::Email => t.email_channel,
            })
            .collect();
        let pending = view
            .unverified
            .iter()
            .map(|k| match k {
                ContactKind::Phone => t.phone,
                ContactKind::Email => t.email,
            })
            .collect();
        return html(
            StatusCode::OK,
            DonePage {
                t,
                id: view.id.clone(),
                token,
                channels,
                pending,
            }
            .render(),
        );
    }
    let contacts = view
        .unverified
        .iter()
        .map(|k| ContactView {
            kind: k.as_str(),
            label: match k {
                ContactKind::Phone
                    if registration
                        .0
                        .get(k)
                        .is_some_and(|p| line(p) == Line::Fixed) =>
                {
                    t.code_for_call
                }
                ContactKind::Phone => t.code_for_phone,
                ContactKind::Email => t.code_for_email,
            },
            to: registration.0.get(k).cloned().unwrap_or_default(),
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let error = error.or_else(|| {
        view.not_sent
            .values()
            .any(|m| m.contains("enough codes") || m.contains("too many"))
            .then(|| t.err_too_many.to_string())
            .or_else(|| {
                (!view.not_sent.is_empty() && view.codes_sent.is_empty())
                    .then(|| t.err_not_sent.to_string())
            })
    });
    html(
        status,
        CodePage {
            t,
            id: view.id.clone(),
            token,
            contacts,
            error,
        }
        .render(),
    )
}

async fn verify(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let t = texts(page_language(Some(&fields), None, &headers));
    let id = fields.get("id").cloned().unwrap_or_default();
    // Without the signup no registration's token is good: the form again.
    let Some(signup) = app.signup() else {
        return expired_form(&app, t);
    };
    let token_ok = signup.part().check_token(
        "registration",
        &id,
        fields.get("token").map_or("", String::as_str),
    );
    if !limits_ok(&fields) || !token_ok || !check_origin_loose(&headers) {
        return expired_form(&app, t);
    }
    let contact = fields.get("contact").cloned().unwrap_or_default();
    let result = if fields.contains_key("show") {
        signup.registration_view(&id).await
    } else if fields.contains_key("resend") {
        signup.resend_code(&id, &contact).await
    } else {
        signup
            .verify_contact(&id, &contact, fields.get("code").map_or("", String::as_str))
            .await
    };
    match result {
        Ok(view) => code_or_done(signup, t, &view, None).await,
        Err(e) => {
            let message = match &e {
                AppError::Conflict(_) => t.err_code_locked.to_string(),
                AppError::Invalid(v) => match v.0.first().map(|f| f.message.as_str()) {
                    Some(m) if m.contains("tries left") => {
                        let n: String = m.chars().filter(char::is_ascii_digit).collect();
                        format!(
                            "{} ({}).",
                            t.err_code.trim_end_matches('.'),
                            t.tries_left.replace("{n}", &n)
                        )
                    }
                    _ => t.err_code.to_string(),
                },
                _ => t.err_other.to_string(),
            };
            match signup.registration_view(&id).await {
                Ok(view) => code_or_done(signup, t, &view, Some(message)).await,
                Err(_) => form_response(
                    &app,
                    t,
                    &Fields::new(),
                    vec![("summary".into(), t.err_other)],
                    &BTreeMap::new(),
                ),
            }
        }
    }
}

/// Cross-site posts are refused (the code forms carry the registration's token instead of a form token).
fn check_origin_loose(headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    !site.is_some_and(|s| s != "same-origin" && s != "none")
}
