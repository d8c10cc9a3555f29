//! Rules the app decides by its clock, driven by a [`TestClock`] instead of
//! sleeping until they fire: an approval that expires, the follow-up
//! window, an operator key that ends. Nothing here asserts on elapsed time.
#![allow(clippy::unwrap_used)]

use bealert_app::usecases::AppConfig;
use bealert_app::{App, AppError, TestClock};
use bealert_core::alert::AlertState;
use bealert_core::lifecycle::{ApprovalPolicy, FollowUp};
use bealert_core::operator::Operator;
use bealert_embedded::Embedded;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The embedded home in `dir`, on a clock that stands still at the present.
fn app_on_test_clock(dir: &std::path::Path, config: AppConfig) -> (App, Arc<TestClock>) {
    let embedded = Embedded::open(dir).unwrap();
    let clock = Arc::new(TestClock::at_now());
    let app = App::new(embedded.ports(), config).with_clock(clock.clone());
    (app, clock)
}

async fn operator(app: &App) -> Operator {
    let (mut op, _) = app.create_operator("ops", "national").await.unwrap();
    op.rights = "send,approve,admin".parse().unwrap();
    op
}

fn drill() -> Vec<u8> {
    crate::common::drill_body("Clock drill")
}

fn conflict(r: Result<impl std::fmt::Debug, AppError>) -> String {
    match r {
        Err(AppError::Conflict(why)) => why,
        other => panic!("expected a 409, got {other:?}"),
    }
}

/// Nobody approves within the wait: the alert expires (the audit says so),
/// and an approval after that is refused. One minute before, it still waits.
#[tokio::test]
async fn an_alert_nobody_approves_expires_after_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let config = AppConfig {
        approval: ApprovalPolicy::All,
        approval_wait: Duration::from_secs(30 * 60),
        ..AppConfig::default()
    };
    let (app, clock) = app_on_test_clock(dir.path(), config);
    let ann = operator(&app).await;
    let bea = Operator {
        user: "bea".into(),
        ..ann.clone()
    };
    let held = app.create_alert(&ann, &drill()).await.unwrap();
    let id = held.id.to_string();
    let state = || async { app.alert_view(&ann, &id).await.unwrap().state };
    assert_eq!(state().await, AlertState::AwaitingApproval);

    clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(state().await, AlertState::AwaitingApproval);

    clock.advance(Duration::from_secs(2 * 60));
    let late = conflict(app.approve_alert(&bea, &id, "test").await);
    assert!(late.contains("expired"), "{late}");
    assert_eq!(state().await, AlertState::Expired);
    let audit = app.alert_audit(&ann, &id).await.unwrap();
    let last = audit.items.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.to),
        ("expire", AlertState::Expired)
    );
}

/// Nothing follows up an alert older than the follow-up window; the 409
/// says why.
#[tokio::test]
async fn nothing_follows_up_an_alert_older_than_the_follow_up_window() {
    let dir = tempfile::tempdir().unwrap();
    let config = AppConfig {
        approval: ApprovalPolicy::None,
        follow_up_window: Duration::from_secs(1),
        ..AppConfig::default()
    };
    let (app, clock) = app_on_test_clock(dir.path(), config);
    let op = operator(&app).await;
    let id = app
        .create_alert(&op, &drill())
        .await
        .unwrap()
        .id
        .to_string();

    // Within the window, the window refuses nothing.
    if let Err(e) = app
        .follow_up_alert(&op, &id, FollowUp::Update, b"{}", "test")
        .await
    {
        assert!(!e.to_string().contains("follow-up window"), "{e}");
    }

    clock.advance(Duration::from_millis(1_001));
    for verb in FollowUp::ALL {
        let late = conflict(app.follow_up_alert(&op, &id, verb, b"{}", "test").await);
        assert!(
            late.contains("older than the follow-up window (1 s)"),
            "{verb:?}: {late}"
        );
    }
}

/// An operator key ends when its lifetime is over by the app's clock, and
/// the refusal says how to get another.
#[tokio::test]
async fn an_operator_key_ends_after_its_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let (app, clock) = app_on_test_clock(dir.path(), AppConfig::default());
    let (_, key) = app.create_operator("ops", "national").await.unwrap();
    let bearer = format!("Bearer {key}");
    let op = app.authenticate(Some(&bearer)).await.unwrap();
    let ends = op.key_expires_at_ms.expect("a key with a lifetime");

    clock.set(ends - 1);
    assert!(app.authenticate(Some(&bearer)).await.is_ok());

    clock.set(ends + 1);
    match app.authenticate(Some(&bearer)).await {
        Err(AppError::Unauthorized(why)) => assert!(
            why.contains("expired") && why.contains("bealert key rotate"),
            "{why}"
        ),
        other => panic!("expected a 401, got {other:?}"),
    }
}

/// The page without its script: a form sent back sooner than a person
/// fills it in is refused; one old enough sends its code, once.
#[tokio::test]
async fn a_form_without_script_must_be_as_old_as_a_person_takes() {
    use bealert_app::usecases::signup::{
        HumanProof, NO_SCRIPT_MIN_AGE_MS, SignupConfig, SignupRequest,
    };
    let dir = tempfile::tempdir().unwrap();
    let embedded = Embedded::open(dir.path()).unwrap();
    let clock = Arc::new(TestClock::at_now());
    let app = App::new(embedded.ports(), AppConfig::default())
        .with_signup(
            embedded.signup_ports(),
            SignupConfig::with_secret(vec![7; 32]),
        )
        .with_clock(clock.clone());
    // The form's token as the page makes it, shown now.
    let form = || {
        let issued = app.now_ms().to_string();
        let mac = app.signup().unwrap().part().token("csrf", &issued);
        format!("{issued}.{mac}")
    };
    let request = |phone: &str| -> SignupRequest {
        serde_json::from_value(json!({
            "language": "en", "phone": phone, "channels": ["sms"], "consent": true,
            "addresses": [{"lat": 50.0035, "lon": 5.7184}],
        }))
        .unwrap()
    };
    let signup = |token: String, phone: &'static str| {
        let app = &app;
        async move {
            app.signup()
                .unwrap()
                .signup_with(request(phone), None, HumanProof::NoScriptForm(token))
                .await
        }
    };

    // Sent at once: refused, no code.
    let quick = signup(form(), "+32470555301").await;
    assert!(
        matches!(quick, Err(AppError::TooManyRequests(_))),
        "{quick:?}"
    );
    assert!(crate::common::outbox(dir.path(), "sms").is_empty());

    // A form older than a person takes: its code goes out, once.
    let token = form();
    clock.advance(Duration::from_millis(NO_SCRIPT_MIN_AGE_MS as u64 - 100));
    let early = signup(token.clone(), "+32470555302").await;
    assert!(
        matches!(early, Err(AppError::TooManyRequests(_))),
        "{early:?}"
    );
    clock.advance(Duration::from_millis(100));
    signup(token.clone(), "+32470555302").await.unwrap();
    assert_eq!(crate::common::outbox(dir.path(), "sms").len(), 1);
    let again = signup(token, "+32470555303").await;
    assert!(
        format!("{again:?}").contains("used already"),
        "used once: {again:?}"
    );
    assert_eq!(crate::common::outbox(dir.path(), "sms").len(), 1);
}
