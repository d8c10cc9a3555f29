//! bealert-http: the inbound HTTP API of api.md as an axum router over
//! [`bealert_app::App`] - the JSON routes, the signup, manage and public
//! pages, the console's files and the per-client request limits - mounted
//! by `bealert serve` and the API Lambda functions (`functions/api-*`).
//! The use cases know nothing of HTTP; this crate maps their answers and
//! [`AppError`]s to responses (RFC 9457 problems, [`problem`]).

mod console;
mod extract;
pub mod limit;
mod manage_page;
mod page;
mod page_text;
pub mod problem;
mod public_page;

use axum::Json;
pub use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use bealert_app::ports::StoredAnswer;
use bealert_app::usecases::idempotency;
use bealert_app::usecases::signup::{HumanProof, SignupRequest};
use bealert_app::{App, AppError};
use bealert_core::lifecycle::FollowUp;
use extract::{AlertBody, Authed, Client, JsonBytes};
use problem::Problem;
use std::collections::HashMap;
use std::sync::Arc;

/// Bodies larger than this get a 413 ...
pub const BODY_LIMIT: usize = 1024 * 1024;
/// ... except imports, which may carry many subscribers ...
pub const IMPORT_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// ... and a network's cells (10,000 cells with footprints are ~5 MB).
pub const CELLS_BODY_LIMIT: usize = 128 * 1024 * 1024;

/// This API's own OpenAPI document.
pub const OPENAPI: &str = include_str!("../openapi.yaml");

/// Every route: what `bealert serve` answers.
pub fn router(app: Arc<App>) -> Router {
    finish(
        app,
        Router::new()
            .merge(subscriber_routes())
            .merge(signup_routes())
            .merge(alert_routes())
            .merge(zone_routes())
            .merge(network_routes())
            .merge(public_routes())
            .route("/v1/status", get(status)),
    )
}

/// Queues, channels and providers as this process sees them (`serve`;
/// in the AWS home `bealert status --backend aws` reads the queues).
async fn status(State(app): State<Arc<App>>, Authed(_op): Authed) -> Answer<impl IntoResponse> {
    Ok(Json(app.status().await?))
}

/// Networks and their cells: the api-networks function.
pub fn networks_router(app: Arc<App>) -> Router {
    finish(app, network_routes())
}

fn network_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/networks", get(list_networks))
        .route(
            "/v1/networks/{name}/cells",
            axum::routing::put(replace_cells).layer(DefaultBodyLimit::max(CELLS_BODY_LIMIT)),
        )
        .route("/v1/networks/{name}/{action}", post(network_action))
}

/// The public signup (JSON and the page): the api-signup function.
pub fn signup_router(app: Arc<App>) -> Router {
    finish(app, signup_routes())
}

fn signup_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/subscribers", post(signup))
        .route("/v1/subscribers/{action}", post(registration_action))
        .route("/v1/signup/challenge", get(signup_challenge))
        .route("/v1/signup/stats", get(signup_stats))
        .route("/v1/signup/link", post(signup_link))
        .route("/v1/groups/{name}/invitations", post(create_invitation))
        .merge(page::routes())
        .merge(manage_page::routes())
}

/// Adds the per-client request limit ([`limit`]); serve the router with
/// `into_make_service_with_connect_info::<SocketAddr>()` so it knows the peer.
pub fn with_client_limits(router: Router, config: &limit::ClientLimitConfig) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        limit::ClientLimits::new(config),
        limit::limit_clients,
    ))
}

/// The subscriber import route and /healthz: the api-subscribers function.
pub fn subscribers_router(app: Arc<App>) -> Router {
    finish(app, subscriber_routes())
}

/// The alert routes and /healthz: the api-alerts function. Only operators'
/// routes: its reserved concurrency creates, approves and cancels alerts,
/// and no outside load may take it ([`public_router`] has the rest).
pub fn alerts_router(app: Arc<App>) -> Router {
    finish(app, alert_routes())
}

/// The routes anyone may call without an operator's key (the public page,
/// its CAP files and the feed, the console's page and files, providers'
/// receipts) and /healthz: the api-public function.
pub fn public_router(app: Arc<App>) -> Router {
    finish(app, public_routes())
}

fn public_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/receipts/{provider}", post(receipts))
        .merge(public_page::routes())
        .merge(console::files())
}

/// The zone preview route and /healthz: the api-zones function.
pub fn zones_router(app: Arc<App>) -> Router {
    finish(app, zone_routes())
}

fn subscriber_routes() -> Router<Arc<App>> {
    Router::new().route(
        "/v1/subscribers:import",
        post(import).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
    )
}

fn alert_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/alerts", post(create_alert).get(console::list))
        .route("/v1/alerts/{id}", axum::routing::any(alert_resource))
        .route("/v1/alerts/{id}/deliveries", get(deliveries))
        .route("/v1/alerts/{id}/audit", get(audit))
        .route("/v1/alerts/{id}/cap", get(cap))
        .route("/v1/alert-templates", get(list_templates))
        .route(
            "/v1/alert-templates/{name}",
            get(get_template).put(put_template),
        )
        .route("/v1/drills", get(list_drills).post(create_drill))
        .route("/v1/drills/{id}", axum::routing::delete(delete_drill))
        .route("/v1/drills/{id}/runs", get(drill_runs))
        .route("/v1/sending", get(sending))
        .route("/v1/sending:halt", post(halt_sending))
        .route("/v1/sending:resume", post(resume_sending))
        .route("/v1/outlets", get(list_outlets))
        .route("/v1/outlets/{name}", put(put_outlet).delete(delete_outlet))
        .merge(console::routes())
}

fn zone_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/zones:preview", post(preview))
        .route("/v1/zones:estimate", post(estimate))
}

/// What every router answers besides its routes, and the app state.
fn finish(app: Arc<App>, routes: Router<Arc<App>>) -> Router {
    routes
        .route("/healthz", get(health))
        .route("/openapi.yaml", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app)
}

type Answer<T> = Result<T, Problem>;

async fn import(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    JsonBytes(body): JsonBytes,
) -> Answer<impl IntoResponse> {
    Ok(Json(app.import_subscribers(&op, &body).await?))
}

async fn list_networks(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
) -> Answer<impl IntoResponse> {
    // The operator's rights first: a refusal is a 403 with or without Alert-SMS.
    bealert_app::usecases::networks::may_list_networks(&op)?;
    let networks = app.networks_offered()?;
    Ok(Json(
        serde_json::json!({"items": networks.list_networks(&op).await?}),
    ))
}

async fn replace_cells(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    JsonBytes(body): JsonBytes,
) -> Answer<impl IntoResponse> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    Ok(Json(
        app.networks_offered()?
            .replace_cells(auth, &name, body)
            .await?,
    ))
}

/// `cells:upload` and `cells:load` (the presigned upload of a large file).
async fn network_action(
    State(app): State<Arc<App>>,
    Path((name, action)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Answer<axum::response::Response> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    match action.as_str() {
        "cells:upload" => {
            let networks = app.networks_offered()?;
            Ok(Json(networks.cells_upload(auth, &name).await?).into_response())
        }
        "cells:load" => {
            let networks = app.networks_offered()?;
            Ok(Json(networks.load_uploaded_cells(auth, &name, &body).await?).into_response())
        }
        _ => Err(Problem::from(AppError::NotFound(format!(
            "no route POST /v1/networks/{name}/{action}; use cells:upload or cells:load"
        )))),
    }
}

async fn estimate(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    JsonBytes(body): JsonBytes,
) -> Answer<impl IntoResponse> {
    Ok(Json(
        app.networks_offered()?.estimate_zone(&op, &body).await?,
    ))
}

async fn create_alert(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Client(client): Client,
    headers: axum::http::HeaderMap,
    body: AlertBody,
) -> Answer<axum::response::Response> {
    let bytes = match &body {
        AlertBody::Json(b) | AlertBody::Cap(b) => b.clone(),
    };
    let fingerprint = idempotency::fingerprint("POST", "/v1/alerts", &bytes);
    once(&app, &op, &headers, &fingerprint, || async {
        let created = match &body {
            AlertBody::Json(body) => app.create_alert_from(&op, body, &client).await?,
            AlertBody::Cap(xml) => app.create_alert_from_cap(&op, xml, &client).await?,
        };
        created_answer(&created)
    })
    .await
}

/// A new alert's answer: 201, where to follow it, the alert.
fn created_answer(created: &bealert_app::usecases::AlertCreated) -> Result<StoredAnswer, AppError> {
    Ok(StoredAnswer {
        status: StatusCode::CREATED.as_u16(),
        location: Some(format!("/v1/alerts/{}", created.id)),
        body: serde_json::to_string(created).map_err(|e| AppError::Internal(e.to_string()))?,
    })
}

/// Runs an alert request once per `Idempotency-Key` (if the request has
/// one) and answers it, or answers a retry with the first answer
/// (`Idempotent-Replayed: true`).
async fn once<F, Fut>(
    app: &App,
    op: &bealert_core::operator::Operator,
    headers: &axum::http::HeaderMap,
    fingerprint: &str,
    request: F,
) -> Answer<axum::response::Response>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<StoredAnswer, AppError>>,
{
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            AppError::from(bealert_core::ValidationErrors::single(
                "Idempotency-Key",
                "give visible ASCII characters, e.g. a UUID",
            ))
        })?),
    };
    let (answer, replayed) = app.idempotent(op, key, fingerprint, request).await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body,
    )
        .into_response();
    if let Some(location) = answer
        .location
        .and_then(|l| header::HeaderValue::from_str(&l).ok())
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            header::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// `/v1/alerts/{id}` (GET) and `/v1/alerts/{id}:<verb>` (POST) share one
/// path segment, which the router cannot split: the method is checked here
/// (405 with the right `Allow`) before the key is.
async fn alert_resource(
    State(app): State<Arc<App>>,
    method: Method,
    Path(target): Path<String>,
    Client(client): Client,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::response::Response, Problem> {
    let verb = target.rsplit_once(':');
    let allowed = if verb.is_some() { "POST" } else { "GET,HEAD" };
    let fits = match verb {
        Some(_) => method == Method::POST,
        None => method == Method::GET || method == Method::HEAD,
    };
    if !fits {
        let mut refused = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("/v1/alerts/{target} does not accept {method}; see /openapi.yaml"),
        )
        .into_response();
        refused
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
        return Ok(refused);
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let op = app.authenticate(authorization).await?;
    let Some((id, verb)) = verb else {
        return Ok(Json(app.alert_view(&op, &target).await?).into_response());
    };
    let follow_up = FollowUp::from_verb(verb);
    if follow_up.is_none() && verb != "approve" && verb != "reject" {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!(
                "{target:?} is not an action on an alert; use /v1/alerts/<id>: followed by \
                 approve, reject, update, cancel or all_clear"
            ),
        ));
    }
    let fingerprint = idempotency::fingerprint("POST", &format!("/v1/alerts/{target}"), &body);
    once(&app, &op, &headers, &fingerprint, || async {
        let decided = match (verb, follow_up) {
            // A new alert: 201 and where to follow it.
            (_, Some(kind)) => {
                let created = app.follow_up_alert(&op, id, kind, &body, &client).await?;
                return created_answer(&created);
            }
            ("approve", _) => app.approve_alert(&op, id, &client).await?,
            _ => app.reject_alert(&op, id, &body, &client).await?,
        };
        Ok(StoredAnswer {
            status: StatusCode::OK.as_u16(),
            location: None,
            body: serde_json::to_string(&decided).map_err(|e| AppError::Internal(e.to_string()))?,
        })
    })
    .await
}

/// `GET /v1/sending`: whether sending is halted, the queued work, the log.
async fn sending(State(app): State<Arc<App>>, Authed(op): Authed) -> Answer<impl IntoResponse> {
    Ok(Json(app.sending(&op).await?))
}

/// `POST /v1/sending:halt`: no channel sends another message until resumed.
async fn halt_sending(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Client(client): Client,
    body: axum::body::Bytes,
) -> Answer<impl IntoResponse> {
    Ok(Json(app.set_halt(&op, true, &body, &client).await?))
}

/// `POST /v1/sending:resume`.
async fn resume_sending(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Client(client): Client,
    body: axum::body::Bytes,
) -> Answer<impl IntoResponse> {
    Ok(Json(app.set_halt(&op, false, &body, &client).await?))
}

async fn create_drill(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    headers: axum::http::HeaderMap,
    JsonBytes(body): JsonBytes,
) -> Answer<impl IntoResponse> {
    // The drill's runs act with the key it was made with (`Authed` read it).
    let key_hash = bealert_app::usecases::drills::key_hash_of(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )?;
    let drill = app.create_drill(&op, &key_hash, &body).await?;
    let location = format!("/v1/drills/{}", drill.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(drill),
    ))
}

async fn list_drills(State(app): State<Arc<App>>, Authed(op): Authed) -> Answer<impl IntoResponse> {
    Ok(Json(serde_json::json!({ "items": app.drills(&op).await? })))
}

async fn delete_drill(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Path(id): Path<String>,
) -> Answer<impl IntoResponse> {
    app.delete_drill(&op, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn drill_runs(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Path(id): Path<String>,
) -> Answer<impl IntoResponse> {
    Ok(Json(
        serde_json::json!({ "items": app.drill_runs(&op, &id).await? }),
    ))
}

async fn list_templates(
    State(app): State<Arc<App>>,
    Authed(_): Authed,
) -> Answer<impl IntoResponse> {
    Ok(Json(serde_json::json!({ "items": app.templates().await? })))
}

async fn get_template(
    State(app): State<Arc<App>>,
    Authed(_): Authed,
    Path(name): Path<String>,
) -> Answer<impl IntoResponse> {
    Ok(Json(app.template(&name).await?))
}

async fn put_template(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Path(name): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Answer<impl IntoResponse> {
    let (view, new) = app.put_template(&op, &name, &body).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

async fn list_outlets(State(app): State<Arc<App>>, Authed(_): Authed) -> Answer<impl IntoResponse> {
    Ok(Json(serde_json::json!({ "items": app.outlets().await? })))
}

async fn put_outlet(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Path(name): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Answer<impl IntoResponse> {
    let (outlet, new) = app.put_outlet(&op, &name, &body).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outlet)))
}

async fn delete_outlet(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Path(name): Path<String>,
) -> Answer<impl IntoResponse> {
    app.delete_outlet(&op, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/alerts/{id}/cap`: the alert as a CAP 1.2 document.
async fn cap(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Path(id): Path<String>,
) -> Answer<impl IntoResponse> {
    let xml = app.alert_cap(&op, &id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/cap+xml; charset=utf-8")],
        xml,
    ))
}

async fn audit(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Path(id): Path<String>,
) -> Answer<impl IntoResponse> {
    Ok(Json(app.alert_audit(&op, &id).await?))
}

/// A provider's delivery receipts (its webhook), authenticated by the
/// provider's own token.
async fn receipts(
    State(app): State<Arc<App>>,
    Path(provider): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Answer<impl IntoResponse> {
    let Some(expected) = bealert_app::usecases::receipt_token(&provider) else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!(
                "no receipts are taken from provider {provider:?}: give it a token in {}",
                bealert_app::usecases::receipt_token_variable(&provider)
            ),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|g| bealert_app::usecases::same_secret(g, &expected)) {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            format!("send provider {provider:?}'s receipt token as Authorization: Bearer <token>"),
        ));
    }
    let receipts = bealert_core::receipt::from_webhook(&provider, &body)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.0))?;
    let report = app
        .apply_receipts(&receipts)
        .await
        .map_err(AppError::from)?;
    Ok(Json(report))
}

async fn deliveries(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Path(id): Path<String>,
    Client(client): Client,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Answer<impl IntoResponse> {
    let Query(params) = query.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    if let Some(other) = params.keys().find(|k| *k != "cursor" && *k != "limit") {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("unknown query parameter {other:?}; use cursor and limit"),
        ));
    }
    let cursor = params.get("cursor").filter(|c| !c.is_empty());
    let limit = params
        .get("limit")
        .map(|v| {
            v.parse::<usize>().map_err(|_| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("limit {v:?} is not a number"),
                )
            })
        })
        .transpose()?;
    Ok(Json(
        app.deliveries_page_from(&op, &id, cursor.map(String::as_str), limit, &client)
            .await?,
    ))
}

async fn preview(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    JsonBytes(body): JsonBytes,
) -> Answer<impl IntoResponse> {
    Ok(Json(app.preview(&op, &body).await?))
}

/// The client address the per-client limit saw, if the server knows it.
fn client_ip(client: Option<axum::Extension<limit::ClientIp>>) -> Option<std::net::IpAddr> {
    client.map(|axum::Extension(limit::ClientIp(ip))| ip)
}

async fn signup(
    State(app): State<Arc<App>>,
    client: Option<axum::Extension<limit::ClientIp>>,
    JsonBytes(body): JsonBytes,
) -> Answer<impl IntoResponse> {
    // The body first: a bad one answers the same with or without the signup.
    let request: SignupRequest = bealert_app::error::parse_body(&body)?;
    let view = app
        .signup_offered()?
        .signup_with(request, client_ip(client), HumanProof::ProofOfWork)
        .await?;
    let location = format!("/v1/subscribers/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactCode {
    contact: String,
    #[serde(default)]
    code: Option<String>,
}

/// `POST /v1/subscribers/{id}:verify` and `{id}:resend`.
async fn registration_action(
    State(app): State<Arc<App>>,
    Path(action): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Answer<impl IntoResponse> {
    let body: ContactCode = bealert_app::error::parse_body(&body)?;
    let view = match action.rsplit_once(':') {
        Some((id, "verify")) => {
            let code = body.code.unwrap_or_default();
            app.signup_offered()?
                .verify_contact(id, &body.contact, &code)
                .await?
        }
        Some((id, "resend")) => {
            // Checked before the signup is looked for, as it always was.
            bealert_app::usecases::signup::contact_kind(&body.contact)?;
            app.signup_offered()?.resend_code(id, &body.contact).await?
        }
        _ => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                format!(
                    "there is no action {action:?}; use /v1/subscribers/{{id}}:verify or :resend"
                ),
            ));
        }
    };
    Ok(Json(view))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkRequest {
    contact: String,
}

/// Sends a self-service link to a verified contact; the same answer
/// whether or not the contact is registered.
async fn signup_link(
    State(app): State<Arc<App>>,
    client: Option<axum::Extension<limit::ClientIp>>,
    JsonBytes(body): JsonBytes,
) -> Answer<impl IntoResponse> {
    let body: LinkRequest = bealert_app::error::parse_body(&body)?;
    app.signup_offered()?
        .request_manage_link(&body.contact, client_ip(client))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            serde_json::json!({"status": "if this contact is registered and verified, a link was sent to it"}),
        ),
    ))
}

async fn create_invitation(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Path(name): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Answer<impl IntoResponse> {
    // The operator's rights first: a refusal is a 403 with or without the signup.
    bealert_app::usecases::signup::may_invite(&op)?;
    let signup = app.signup_offered()?;
    Ok((
        StatusCode::CREATED,
        Json(signup.create_invitation(&op, &name, &body).await?),
    ))
}

async fn signup_challenge(State(app): State<Arc<App>>) -> Answer<impl IntoResponse> {
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(app.signup_offered()?.signup_challenge()?),
    ))
}

async fn signup_stats(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
) -> Answer<impl IntoResponse> {
    Ok(Json(app.signup_offered()?.signup_stats(&op).await?))
}

/// Liveness: answers without touching storage and says nothing about it.
async fn health() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI)
}

async fn not_found(method: Method, uri: Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        format!(
            "there is no route {method} {}; see /openapi.yaml",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not accept {method}; see /openapi.yaml", uri.path()),
    )
}
