//! The self-service pages: ask for a link, then with it view, edit, pause,
//! export or delete a registration. Same rules as the signup page: no
//! cookies, signed form tokens, cross-site posts refused, strict CSP.

use super::page::{Fields, LANGUAGES, check_origin, csrf_token, html, limits_ok, page_language};
use super::page_text::{Texts, texts};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bealert_app::App;
use bealert_app::AppError;
use bealert_app::ports::AddressQuery;
use bealert_app::usecases::self_service::{ManageLink, RegistrationEdit, RegistrationExport};
use bealert_app::usecases::signup::SignupApp;
use bealert_core::Channel;
use bealert_core::signup::RegistrationState;
use bealert_core::subscriber::{AddressInput, MAX_ADDRESSES};
use std::collections::HashMap;
use std::sync::Arc;

pub fn routes() -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route("/manage", get(ask_page).post(ask))
        .route("/manage/{id}", get(manage_page).post(manage_action))
        .route("/manage/{id}/export", get(export))
}

#[derive(Template)]
#[template(path = "manage_ask.html")]
struct AskPage {
    t: &'static Texts,
    csrf: String,
    sent: bool,
    error: Option<&'static str>,
}

struct AddressRow {
    i: usize,
    name: String,
    label: String,
    lat: String,
    lon: String,
}

#[derive(Template)]
#[template(path = "manage.html")]
struct ManagePage {
    t: &'static Texts,
    csrf: String,
    action: String,
    export: String,
    notice: Option<&'static str>,
    error: Option<&'static str>,
    state: &'static str,
    paused: bool,
    phone: Option<String>,
    email: Option<String>,
    languages: [(&'static str, &'static str); 4],
    language: &'static str,
    sms: bool,
    voice: bool,
    email_channel: bool,
    addresses: Vec<AddressRow>,
    can_add: bool,
}

#[derive(Template)]
#[template(path = "deleted.html")]
struct DeletedPage {
    t: &'static Texts,
    lines: Vec<String>,
}

fn ask_response(
    app: &App,
    t: &'static Texts,
    sent: bool,
    error: Option<&'static str>,
    status: StatusCode,
) -> Response {
    html(
        status,
        AskPage {
            t,
            csrf: csrf_token(app),
            sent,
            error,
        }
        .render(),
    )
}

async fn ask_page(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let t = texts(page_language(
        None,
        q.get("lang").map(String::as_str),
        &headers,
    ));
    ask_response(&app, t, false, None, StatusCode::OK)
}

async fn ask(
    State(app): State<Arc<App>>,
    client: Option<axum::Extension<super::limit::ClientIp>>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let t = texts(page_language(Some(&fields), None, &headers));
    if !limits_ok(&fields) || !check_origin(&app, &headers, &fields) {
        return ask_response(
            &app,
            t,
            false,
            Some(t.err_expired_form),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    // A server without the signup has no form token, so never gets here.
    let Some(signup) = app.signup() else {
        return ask_response(
            &app,
            t,
            false,
            Some(t.err_expired_form),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let contact = fields.get("contact").map_or("", String::as_str);
    match signup
        .request_manage_link(contact, client.map(|axum::Extension(c)| c.0))
        .await
    {
        Ok(()) => ask_response(&app, t, true, None, StatusCode::OK),
        Err(AppError::Invalid(_)) => ask_response(
            &app,
            t,
            false,
            Some(t.err_contact),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(AppError::TooManyRequests(_)) => ask_response(
            &app,
            t,
            false,
            Some(t.err_too_many),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(_) => ask_response(
            &app,
            t,
            false,
            Some(t.err_other),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    }
}

fn link_of(id: String, q: &HashMap<String, String>) -> ManageLink {
    ManageLink {
        id,
        until: q.get("until").and_then(|u| u.parse().ok()).unwrap_or(0),
        sig: q.get("sig").cloned().unwrap_or_default(),
    }
}

fn render_manage(
    app: &App,
    t: &'static Texts,
    link: &ManageLink,
    view: &RegistrationExport,
    notice: Option<&'static str>,
    error: Option<&'static str>,
) -> Response {
    let has = |c: Channel| view.channels.contains(&c);
    let addresses = view
        .addresses
        .iter()
        .enumerate()
        .map(|(i, a)| AddressRow {
            i,
            name: a
                .label
                .clone()
                .unwrap_or_else(|| format!("{} {}", t.address_n, i + 1)),
            label: a.label.clone().unwrap_or_default(),
            lat: format!("{:.5}", a.lat),
            lon: format!("{:.5}", a.lon),
        })
        .collect::<Vec<_>>();
    let page = ManagePage {
        t,
        csrf: csrf_token(app),
        action: link.path(),
        export: format!(
            "/manage/{}/export?until={}&sig={}",
            link.id, link.until, link.sig
        ),
        notice,
        error,
        state: match view.state {
            RegistrationState::Pending => t.state_pending,
            RegistrationState::Active => t.state_active,
            RegistrationState::Paused => t.state_paused,
        },
        paused: view.state == RegistrationState::Paused,
        phone: view.phone.as_ref().map(|c| c.value.clone()),
        email: view.email.as_ref().map(|c| c.value.clone()),
        languages: LANGUAGES,
        language: view.language.code(),
        sms: has(Channel::Sms),
        voice: has(Channel::Voice),
        email_channel: has(Channel::Email),
        can_add: addresses.len() < MAX_ADDRESSES,
        addresses,
    };
    html(
        if error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        page.render(),
    )
}

async fn manage_page(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let t = texts(page_language(
        None,
        q.get("lang").map(String::as_str),
        &headers,
    ));
    let link = link_of(id, &q);
    // Without the signup no link is good.
    let Some(signup) = app.signup() else {
        return ask_response(&app, t, false, Some(t.err_link), StatusCode::FORBIDDEN);
    };
    match signup.manage_view(&link).await {
        Ok(view) => render_manage(&app, t, &link, &view, None, None),
        Err(_) => ask_response(&app, t, false, Some(t.err_link), StatusCode::FORBIDDEN),
    }
}

async fn export(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let signup = match app.signup_offered() {
        Ok(s) => s,
        Err(e) => return super::problem::Problem::from(e).into_response(),
    };
    match signup.manage_view(&link_of(id, &q)).await {
        Ok(view) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"bealert-registration.json\"",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            serde_json::to_string_pretty(&view).unwrap_or_default(),
        )
            .into_response(),
        Err(e) => super::problem::Problem::from(e).into_response(),
    }
}

async fn edit_from(
    signup: SignupApp<'_>,
    fields: &Fields,
    view: &RegistrationExport,
) -> Result<RegistrationEdit, ()> {
    let on = |k: &str| fields.get(k).is_some_and(|v| v == "on");
    let get = |k: &str| {
        fields
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let channels = super::page::channels_from(fields);
    let mut addresses: Vec<AddressInput> = (0..view.addresses.len())
        .filter(|i| !on(&format!("k{i}_remove")))
        .filter_map(|i| {
            Some(AddressInput {
                label: get(&format!("k{i}_label")),
                lat: get(&format!("k{i}_lat"))?.parse().ok()?,
                lon: get(&format!("k{i}_lon"))?.parse().ok()?,
            })
        })
        .collect();
    let (postal, town) = (get("new_postal"), get("new_town"));
    if postal.is_some() || town.is_some() {
        let query = AddressQuery {
            street: None,
            postal_code: postal,
            municipality: town,
        };
        let found = signup
            .part()
            .ports
            .geocoder
            .geocode(&query)
            .await
            .unwrap_or_default();
        let place = found.into_iter().next().ok_or(())?;
        addresses.push(AddressInput {
            label: get("new_label"),
            lat: place.lat,
            lon: place.lon,
        });
    }
    Ok(RegistrationEdit {
        language: get("language").unwrap_or_else(|| view.language.code().to_string()),
        channels,
        addresses,
    })
}

async fn manage_action(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let t = texts(page_language(Some(&fields), None, &headers));
    let link = link_of(id, &q);
    // Without the signup no link is good.
    let Some(signup) = app.signup() else {
        return ask_response(&app, t, false, Some(t.err_link), StatusCode::FORBIDDEN);
    };
    let Ok(view) = signup.manage_view(&link).await else {
        return ask_response(&app, t, false, Some(t.err_link), StatusCode::FORBIDDEN);
    };
    if !limits_ok(&fields) || !check_origin(&app, &headers, &fields) {
        return render_manage(&app, t, &link, &view, None, Some(t.err_expired_form));
    }
    let result = match fields.get("action").map(String::as_str) {
        Some("pause") => signup.manage_pause(&link, true).await,
        Some("resume") => signup.manage_pause(&link, false).await,
        Some("delete") if fields.get("confirm").is_some_and(|v| v == "on") => {
            return match signup.manage_delete(&link).await {
                Ok(r) => {
                    let lines = vec![
                        format!("registration: {}", u8::from(r.registration)),
                        format!("subscriber: {}", u8::from(r.subscriber)),
                        format!("addresses: {}", r.addresses),
                        format!("groups: {}", r.groups),
                        format!("deliveries: {}", r.deliveries),
                        format!("queued_jobs: {}", r.queued_jobs),
                    ];
                    html(StatusCode::OK, DeletedPage { t, lines }.render())
                }
                Err(_) => render_manage(&app, t, &link, &view, None, Some(t.err_other)),
            };
        }
        Some("delete") => {
            return render_manage(&app, t, &link, &view, None, Some(t.delete_confirm));
        }
        _ => match edit_from(signup, &fields, &view).await {
            Ok(edit) => signup.manage_edit(&link, edit).await,
            Err(()) => {
                return render_manage(&app, t, &link, &view, None, Some(t.err_address_not_found));
            }
        },
    };
    match result {
        Ok(new) => render_manage(&app, t, &link, &new, Some(t.saved), None),
        Err(AppError::Invalid(v)) => {
            let error = if v.0.iter().any(|f| f.path.starts_with("addresses")) {
                t.err_address_missing
            } else if v.0.iter().any(|f| f.path == "channels") {
                t.err_channels
            } else {
                t.err_other
            };
            render_manage(&app, t, &link, &view, None, Some(error))
        }
        Err(_) => render_manage(&app, t, &link, &view, None, Some(t.err_other)),
    }
}
