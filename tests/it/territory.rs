//! Territory everywhere, in both homes: social accounts and sign networks
//! carry a jurisdiction that an alert's operator must cover (a mayor's
//! alert never goes to national accounts), a drill is checked against its
//! author's territory when made and stops once its author's key is
//! revoked, and outlets' URLs reach public `https` endpoints only.
//! On real boundaries: Elsene/Ixelles and Etterbeek inside the
//! Brussels-Capital Region.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bealert_app::usecases::AppConfig;
use bealert_app::{App, AppError};
use bealert_core::geography::{Level, Unit, parse_units};
use bealert_core::operator::{Operator, hash_key};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const ELSENE: &str = "21009";
const ETTERBEEK: &str = "21005";
const BRUSSELS: &str = "04000";

fn units() -> &'static [Unit] {
    static UNITS: OnceLock<Vec<Unit>> = OnceLock::new();
    UNITS.get_or_init(|| {
        parse_units(&bealert_geodata::belgium_units())
            .unwrap()
            .into_iter()
            .filter(|u| {
                (u.level == Level::Municipality && [ELSENE, ETTERBEEK].contains(&u.code.as_str()))
                    || (u.level == Level::Region && u.code == BRUSSELS)
            })
            .collect()
    })
}

/// A unit's whole area, by its NIS code.
fn inside(code: &str) -> Value {
    json!({"geocodes": [{"name": "NIS", "value": code}]})
}

struct People {
    national: Operator,
    governor: Operator,
    mayor: Operator,
    mayor_key: String,
}

async fn people(app: &App) -> People {
    app.ports.geography.put_units(units()).await.unwrap();
    let national = app.create_operator("crisis", "national").await.unwrap().0;
    let governor = app
        .create_operator("governor", &format!("province:{BRUSSELS}"))
        .await
        .unwrap()
        .0;
    let (mayor, mayor_key) = app
        .create_operator("mayor", &format!("municipality:{ELSENE}"))
        .await
        .unwrap();
    People {
        national,
        governor,
        mayor,
        mayor_key,
    }
}

/// The social accounts and sign networks an alert of `op` with `public`
/// was given (stored with the alert).
async fn outlets_of(app: &App, op: &Operator, public: Value) -> Result<Vec<String>, AppError> {
    let body = json!({
        "status": "Exercise", "event": "Territory drill", "severity": "Minor",
        "urgency": "Future", "certainty": "Possible", "messages": {"nl": "Oefening"},
        "channels": [], "area": inside(ELSENE), "public": public,
    });
    let created = app.create_alert(op, body.to_string().as_bytes()).await?;
    let record = app
        .ports
        .alerts
        .get_alert(created.id)
        .await
        .unwrap()
        .unwrap();
    let public = record.spec.public.unwrap();
    Ok(public.social.into_iter().chain(public.signs).collect())
}

async fn outlets(app: &App, p: &People) {
    let put = async |op: &Operator, name: &str, body: Value| {
        app.put_outlet(op, name, body.to_string().as_bytes()).await
    };
    let social = |j: Option<&str>| match j {
        Some(j) => json!({"kind": "social", "url": "sim", "jurisdiction": j}),
        None => json!({"kind": "social", "url": "sim"}),
    };
    put(&p.national, "nat-x", social(None)).await.unwrap();
    put(&p.national, "bxl-x", social(Some("province:04000")))
        .await
        .unwrap();
    put(&p.national, "ixl-x", social(Some("municipality:21009")))
        .await
        .unwrap();
    put(&p.national, "etb-x", social(Some("municipality:21005")))
        .await
        .unwrap();
    put(
        &p.national,
        "ixl-vms",
        json!({"kind": "sign", "url": "sim", "jurisdiction": "municipality:21009"}),
    )
    .await
    .unwrap();
    put(
        &p.national,
        "nat-vms",
        json!({"kind": "sign", "url": "sim"}),
    )
    .await
    .unwrap();
    // Stored with their jurisdiction; national unless told.
    let listed: Vec<(String, String)> = app
        .outlets()
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.name.clone(), o.jurisdiction().to_string()))
        .collect();
    assert!(
        listed.contains(&("nat-x".into(), "national".into())),
        "{listed:?}"
    );
    assert!(listed.contains(&("etb-x".into(), "municipality:21005".into())));
    // A territory whose boundary is not loaded cannot be decided on.
    let e = put(&p.national, "nowhere", social(Some("municipality:99999")))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AppError::Invalid(v) if v.0[0].path == "jurisdiction" && v.0[0].message.contains("not loaded")),
        "{e:?}"
    );
    // Registering stays national operators' (who cover every territory).
    assert!(matches!(
        put(&p.mayor, "ixl-2", social(Some("municipality:21009"))).await,
        Err(AppError::Forbidden(_))
    ));

    // Left out, "every outlet" is every outlet the operator covers.
    let mut all = outlets_of(app, &p.national, json!({})).await.unwrap();
    all.sort();
    assert_eq!(
        all,
        ["bxl-x", "etb-x", "ixl-vms", "ixl-x", "nat-vms", "nat-x"]
    );
    let mut province = outlets_of(app, &p.governor, json!({})).await.unwrap();
    province.sort();
    assert_eq!(province, ["bxl-x", "etb-x", "ixl-vms", "ixl-x"]);
    let mut mayor = outlets_of(app, &p.mayor, json!({})).await.unwrap();
    mayor.sort();
    assert_eq!(mayor, ["ixl-vms", "ixl-x"], "never a national account");
    // Named, one outside the territory is refused, saying which and why.
    let e = outlets_of(
        app,
        &p.mayor,
        json!({"social": ["ixl-x", "nat-x"], "signs": ["etb-x"]}),
    )
    .await
    .unwrap_err();
    let AppError::Invalid(v) = &e else {
        panic!("{e:?}")
    };
    let paths: Vec<&str> = v.0.iter().map(|f| f.path.as_str()).collect();
    assert!(paths.contains(&"public.social[1]"), "{e:?}");
    assert!(
        v.0.iter()
            .any(|f| f.message.contains("national") && f.message.contains("does not cover")),
        "{e:?}"
    );
    let e = outlets_of(app, &p.mayor, json!({"social": ["etb-x"], "signs": []}))
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("municipality:21005"), "{e:?}");
}

async fn drills(app: &App, p: &People) {
    let template = json!({"event": "Monthly test", "severity": "Minor", "urgency": "Immediate",
        "certainty": "Observed", "messages": {"nl": "Test."}});
    app.put_template(&p.national, "monthly", template.to_string().as_bytes())
        .await
        .unwrap();
    let drill = |area: Value| {
        json!({"schedule": "rate(1 hour)", "template": "monthly", "area": area})
            .to_string()
            .into_bytes()
    };
    let key = hash_key(&p.mayor_key);
    // Made outside the author's territory: refused now, saying what to fix.
    let e = app
        .create_drill(&p.mayor, &key, &drill(inside(ETTERBEEK)))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AppError::Forbidden(m) if m.contains("outside your territory") && m.contains("municipality 21009")),
        "{e:?}"
    );
    let made = app
        .create_drill(&p.mayor, &key, &drill(inside(ELSENE)))
        .await
        .unwrap();
    let ran = app.run_drill(&made.id, 1_800_000_000_000).await.unwrap();
    assert!(ran.is_some(), "the author's key works: the drill runs");

    // A rotation (`bealert key rotate`) moves the author's drills to the
    // new key: switching keys on time does not stop them.
    let rotation = bealert_app::usecases::Rotation {
        new_key_lifetime_ms: Some(bealert_core::operator::DEFAULT_KEY_LIFETIME_MS),
        overlap_ms: None,
    };
    let (_, rotated) = bealert_app::usecases::replace_keys(
        app.ports.operators.as_ref(),
        &p.mayor.name,
        &p.mayor.user,
        rotation,
    )
    .await
    .unwrap();
    let key = hash_key(&rotated.unwrap());
    let moved = bealert_app::usecases::drills::rebind_drills(
        app.ports.documents.as_ref(),
        &p.mayor.name,
        &p.mayor.user,
        &key,
    )
    .await
    .unwrap();
    assert_eq!(moved, 1);
    assert!(
        app.run_drill(&made.id, 1_800_001_800_000)
            .await
            .unwrap()
            .is_some(),
        "rotated, the author's drill still runs"
    );

    // The key revoked: the next run sends nothing, says why, and the drill stops.
    assert!(app.ports.operators.revoke_key(&key).await.unwrap());
    assert_eq!(
        app.run_drill(&made.id, 1_800_003_600_000).await.unwrap(),
        None
    );
    let runs = app.drill_runs(&p.national, &made.id).await.unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0].status, "refused");
    let why = runs[0].error.clone().unwrap();
    assert!(why.contains("revoked") && why.contains("mayor"), "{why}");
    let listed = app.drills(&p.national).await.unwrap();
    let view = listed.iter().find(|d| d.id == made.id).unwrap();
    assert!(view.next_run.is_none(), "{view:?}");
    assert!(
        view.stopped
            .as_deref()
            .is_some_and(|s| s.contains("revoked"))
    );
    // EventBridge may still invoke it (the drill function cannot delete
    // the schedule): nothing is sent, no further run is recorded.
    assert_eq!(
        app.run_drill(&made.id, 1_800_007_200_000).await.unwrap(),
        None
    );
    assert_eq!(
        app.drill_runs(&p.national, &made.id).await.unwrap().len(),
        3
    );

    // The embedded scheduler: a due drill of a revoked key is run once
    // (refused, recorded) and never again.
    let other = app
        .create_operator("mayor-2", &format!("municipality:{ELSENE}"))
        .await
        .unwrap();
    let other_key = hash_key(&other.1);
    let second = app
        .create_drill(&other.0, &other_key, &drill(inside(ELSENE)))
        .await
        .unwrap();
    assert!(app.ports.operators.revoke_key(&other_key).await.unwrap());
    let mut doc = app
        .ports
        .documents
        .get_document("drill", &second.id)
        .await
        .unwrap()
        .unwrap();
    doc["next_run"] = json!(bealert_app::now_ms() - 1_000);
    app.ports
        .documents
        .put_document("drill", &second.id, &doc)
        .await
        .unwrap();
    assert_eq!(app.fire_due_drills().await.unwrap(), 1);
    let runs = app.drill_runs(&p.national, &second.id).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].alert_id.is_none() && runs[0].error.as_deref().unwrap().contains("revoked"));
    assert_eq!(app.fire_due_drills().await.unwrap(), 0, "stopped for good");
}

/// Outlet URLs reach public https endpoints only (no development switch here).
async fn endpoints(app: &App, p: &People) {
    for url in [
        "http://127.0.0.1:9/post",
        "https://127.0.0.1/post",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/post",
        "https://localhost/post",
        "https://[::ffff:10.1.2.3]/post",
        "http://social.example.be/post",
    ] {
        let e = app
            .put_outlet(
                &p.national,
                "ssrf",
                json!({"kind": "social", "url": url}).to_string().as_bytes(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AppError::Invalid(v) if v.0[0].path == "url"),
            "{url}: {e:?}"
        );
    }
}

async fn all(app: App) {
    let app = Arc::new(app);
    let p = people(&app).await;
    outlets(&app, &p).await;
    drills(&app, &p).await;
    endpoints(&app, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn territory_holds_everywhere_in_the_embedded_home() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = bealert_embedded::Embedded::open(dir.path()).unwrap();
    let app = App::new(embedded.ports(), AppConfig::default())
        .with_public(embedded.public_ports(Duration::from_secs(5)));
    all(app).await;
}

#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn territory_holds_everywhere_in_the_aws_home() {
    use bealert_aws::testkit;
    testkit::require_stack().await;
    let prefix = testkit::unique_prefix("terr");
    let settings = bealert_aws::Settings {
        tables: bealert_aws::Tables::with_prefix(&prefix),
        queue_prefix: prefix.clone(),
        ..bealert_aws::Settings::from_env()
    };
    let aws =
        bealert_aws::AwsHome::with_dynamodb(&testkit::sdk_config(), testkit::dynamodb(), settings);
    aws.setup().await.unwrap();
    let app = App::new(aws.ports(), AppConfig::default())
        .with_public(aws.public_ports(Duration::from_secs(5), None));
    all(app).await;
}
