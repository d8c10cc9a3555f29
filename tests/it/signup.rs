//! The public signup through the real `bealert serve`: codes in the outbox,
//! verification, abuse limits, and the next alert reaching a verified citizen.
#![allow(clippy::unwrap_used)]

use crate::common;

use bealert_app::usecases::signup::solve_pow;
use common::{Api, Server, alert_body, operator, outbox};
use serde_json::{Value, json};
use std::time::Duration;

const BASTOGNE: (f64, f64) = (50.0035, 5.7184);

/// A citizen's JSON signup, with a solved proof of work.
async fn signup_body(api: &Api, phone: &str, email: Option<&str>, channels: &[&str]) -> Value {
    let c = api.get("/v1/signup/challenge").await;
    assert_eq!(c.status, 200, "{}", c.body);
    let challenge = c.body["challenge"].as_str().unwrap().to_string();
    let nonce = solve_pow(&challenge, c.body["bits"].as_u64().unwrap() as u32);
    json!({
        "language": "fr", "phone": phone, "email": email, "channels": channels,
        "addresses": [{"label": "home", "lat": BASTOGNE.0, "lon": BASTOGNE.1}],
        "consent": true,
        "proof_of_work": {"challenge": challenge, "nonce": nonce}
    })
}

/// The last verification code sent to `to` (read from the outbox).
fn code_for(dir: &std::path::Path, channel: &str, to: &str) -> String {
    let line = outbox(dir, channel)
        .into_iter()
        .rev()
        .find(|l| l["kind"] == "verification" && l["to"] == to)
        .unwrap_or_else(|| panic!("no code to {to} in the {channel} outbox"));
    assert!(line.get("alert_id").is_none(), "{line}");
    line["text"]
        .as_str()
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_citizen_signs_up_verifies_and_receives_the_next_alert_only_where_verified() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "national-centre", "national");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server.url, &key);
    let zone = json!({"circles": [{"lat": BASTOGNE.0, "lon": BASTOGNE.1, "radius_km": 3}]});

    let body = signup_body(
        &api,
        "+32470111222",
        Some("marie@example.be"),
        &["sms", "email"],
    )
    .await;
    let started = api.post("/v1/subscribers", &body).await;
    assert_eq!(started.status, 201, "{}", started.body);
    assert_eq!(started.body["state"], "pending");
    assert_eq!(started.body["codes_sent"], json!(["phone", "email"]));
    let id = started.body["id"].as_str().unwrap().to_string();

    // Pending: nobody to reach yet.
    let preview = api.post("/v1/zones:preview", &json!({"area": zone})).await;
    assert_eq!(
        preview.body["recipients"], 0,
        "a pending registration is never resolved"
    );

    // A wrong code counts; the right one turns the SMS channel on.
    let wrong = api
        .post(
            &format!("/v1/subscribers/{id}:verify"),
            &json!({"contact": "phone", "code": "000000"}),
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(
        wrong.body["detail"]
            .as_str()
            .unwrap()
            .contains("4 tries left"),
        "{}",
        wrong.body
    );
    let sms_code = code_for(dir.path(), "sms", "+32470111222");
    let ok = api
        .post(
            &format!("/v1/subscribers/{id}:verify"),
            &json!({"contact": "phone", "code": sms_code}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["state"], "active");
    assert_eq!(ok.body["unverified"], json!(["email"]));

    let preview = api.post("/v1/zones:preview", &json!({"area": zone})).await;
    assert_eq!(preview.body["recipients"], 1, "{}", preview.body);
    assert_eq!(
        preview.body["by_channel"],
        json!({"sms": 1}),
        "the unverified e-mail is not a channel"
    );

    let created = api.post("/v1/alerts", &alert_body(zone.clone())).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let alert_id = created.body["id"].as_str().unwrap().to_string();
    api.wait_sent(&alert_id, Duration::from_secs(30)).await;
    let alerts: Vec<Value> = outbox(dir.path(), "sms")
        .into_iter()
        .filter(|l| l["kind"] == "alert" && l["alert_id"] == alert_id.as_str())
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["to"], "+32470111222");
    assert_eq!(alerts[0]["language"], "fr");
    assert!(
        outbox(dir.path(), "email")
            .iter()
            .all(|l| l["kind"] != "alert"),
        "nothing but the code goes to an unverified e-mail"
    );

    // Verifying the e-mail later adds the channel.
    let email_code = code_for(dir.path(), "email", "marie@example.be");
    let ok = api
        .post(
            &format!("/v1/subscribers/{id}:verify"),
            &json!({"contact": "email", "code": email_code}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let preview = api.post("/v1/zones:preview", &json!({"area": zone})).await;
    assert_eq!(
        preview.body["by_channel"],
        json!({"sms": 1, "email": 1}),
        "{}",
        preview.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn five_wrong_codes_lock_the_code_and_a_new_one_can_be_asked() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server.url, "");
    let body = json!({
        "language": "nl", "email": "jan@example.be", "channels": ["email"],
        "addresses": [{"lat": 51.05, "lon": 3.72}], "consent": true
    });
    let started = api.post("/v1/subscribers", &body).await;
    assert_eq!(
        started.status, 201,
        "an e-mail signup needs no proof of work: {}",
        started.body
    );
    let id = started.body["id"].as_str().unwrap().to_string();
    let right = code_for(dir.path(), "email", "jan@example.be");
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    let verify = |code: String| {
        let api = &api;
        let id = id.clone();
        async move {
            api.post(
                &format!("/v1/subscribers/{id}:verify"),
                &json!({"contact": "email", "code": code}),
            )
            .await
        }
    };
    for left in (1..5).rev() {
        let a = verify(wrong.to_string()).await;
        assert_eq!(a.status, 422, "{}", a.body);
        assert!(
            a.body["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("{left} tries left")),
            "{}",
            a.body
        );
    }
    let locked = verify(wrong.to_string()).await;
    assert_eq!(locked.status, 409, "{}", locked.body);
    let still = verify(right.clone()).await;
    assert_eq!(
        still.status, 409,
        "the right code is refused once locked: {}",
        still.body
    );

    // A new code needs a minute's wait...
    let soon = api
        .post(
            &format!("/v1/subscribers/{id}:resend"),
            &json!({"contact": "email"}),
        )
        .await;
    assert_eq!(soon.status, 200, "{}", soon.body);
    assert!(
        soon.body["not_sent"]["email"]
            .as_str()
            .unwrap()
            .contains("ask again in"),
        "{}",
        soon.body
    );
    assert_eq!(outbox(dir.path(), "email").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sms_pumping_is_refused_by_country_proof_of_work_and_number_limits() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "national-centre", "national");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server.url, &key);

    // A premium-rate country: refused before anything is stored or sent.
    let body = signup_body(&api, "+2348031234567", None, &["sms"]).await;
    let refused = api.post("/v1/subscribers", &body).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body["detail"].as_str().unwrap().contains("+32"),
        "{}",
        refused.body
    );

    // No proof of work, or one used twice: refused.
    let mut body = signup_body(&api, "+32470999001", None, &["sms"]).await;
    let pow = body["proof_of_work"].take();
    body.as_object_mut().unwrap().remove("proof_of_work");
    let refused = api.post("/v1/subscribers", &body).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        refused.body["errors"][0]["path"], "proof_of_work",
        "{}",
        refused.body
    );
    body["proof_of_work"] = pow;
    assert_eq!(api.post("/v1/subscribers", &body).await.status, 201);
    let again = api.post("/v1/subscribers", &body).await;
    assert_eq!(again.status, 422, "{}", again.body);
    assert!(
        again.body["detail"]
            .as_str()
            .unwrap()
            .contains("used already"),
        "{}",
        again.body
    );

    // One number gets at most 5 codes a day, however many registrations ask.
    for _ in 0..6 {
        let body = signup_body(&api, "+32470999002", None, &["sms"]).await;
        assert_eq!(api.post("/v1/subscribers", &body).await.status, 201);
    }
    let to_number = outbox(dir.path(), "sms")
        .iter()
        .filter(|l| l["to"] == "+32470999002")
        .count();
    assert_eq!(to_number, 5);

    let stats = api.get("/v1/signup/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    assert_eq!(stats.body["counters"]["refused_country"], 1);
    assert_eq!(stats.body["counters"]["refused_number"], 1);
    assert_eq!(stats.body["counters"]["codes_sent_sms"], 6);
    assert_eq!(stats.body["counters"]["signups"], 7);
    let anonymous = Api::new(&server.url, "").get("/v1/signup/stats").await;
    assert_eq!(anonymous.status, 401, "operators only: {}", anonymous.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_speaks_the_citizens_language_and_shows_script_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    for (accept, lang, title) in [
        ("nl-BE,nl;q=0.9", "nl", "Inschrijven voor bealert"),
        ("fr-BE,fr;q=0.9", "fr", "S&#39;inscrire à bealert"),
        ("de-DE", "de", "Bei bealert anmelden"),
        ("es-ES,en;q=0.5", "en", "Sign up for bealert"),
    ] {
        let res = client
            .get(format!("{}/", server.url))
            .header("accept-language", accept)
            .send()
            .await
            .unwrap();
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        let html = res.text().await.unwrap();
        assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{lang}");
        assert!(html.contains(title), "{lang}: {title}");
        for token in [
            "autocomplete=\"tel\"",
            "autocomplete=\"email\"",
            "postal-code",
            "address-level2",
            "street-address",
        ] {
            assert!(html.contains(token), "{lang}: {token}");
        }
    }

    // Script typed in fields comes back as text, with the error next to its field.
    let page = client
        .get(format!("{}/?lang=en", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let form = [
        ("lang", "en"),
        ("csrf", csrf),
        ("phone", "<script>alert(1)</script>"),
        ("a0_town", "<img src=x onerror=alert(1)>"),
        ("sms", "on"),
    ];
    let res = client
        .post(format!("{}/signup", server.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("<script>alert"),
        "script must not come back as markup"
    );
    assert!(!html.contains("<img src=x"), "markup must not come back");
    assert!(html.contains("&#60;script&#62;alert(1)"), "shown as text");
    assert!(
        html.contains("id=\"phone-error\""),
        "the error sits next to its field"
    );
    assert!(html.contains("aria-invalid=\"true\""));
    assert!(html.contains("Tick the consent box"));

    // A post from another site is refused.
    let res = client
        .post(format!("{}/signup", server.url))
        .header("sec-fetch-site", "cross-site")
        .form(&[("lang", "en"), ("csrf", csrf), ("phone", "+32470123456")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("This form has expired"));
}

/// Every file of the data directory but the outbox (the providers' side,
/// under its own retention rule) that contains `needle`.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().map_while(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "outbox") {
                    stack.push(path);
                }
                continue;
            }
            let bytes = std::fs::read(&path).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_link_a_citizen_edits_pauses_exports_and_deletes_leaving_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "national-centre", "national");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server.url, &key);
    let client = reqwest::Client::new();
    let phone = "+32470123987";
    let zone = json!({"circles": [{"lat": BASTOGNE.0, "lon": BASTOGNE.1, "radius_km": 3}]});

    let body = signup_body(&api, phone, None, &["sms"]).await;
    let id = api.post("/v1/subscribers", &body).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let code = code_for(dir.path(), "sms", phone);
    let ok = api
        .post(
            &format!("/v1/subscribers/{id}:verify"),
            &json!({"contact": "phone", "code": code}),
        )
        .await;
    assert_eq!(ok.body["state"], "active");
    // The citizen's alert: a delivery (and its contact) is kept.
    let first = api.post("/v1/alerts", &alert_body(zone.clone())).await;
    api.wait_sent(first.body["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;

    // A link goes only to a verified contact; the answer never says who is registered.
    let asked = api
        .post("/v1/signup/link", &json!({"contact": phone}))
        .await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    let stranger = api
        .post("/v1/signup/link", &json!({"contact": "+32470000404"}))
        .await;
    assert_eq!((stranger.status, &stranger.body), (202, &asked.body));
    let line = outbox(dir.path(), "sms")
        .into_iter()
        .rev()
        .find(|l| l["kind"] == "self_service")
        .expect("a link was sent");
    assert_eq!(line["to"], phone);
    let text = line["text"].as_str().unwrap();
    let link = &text[text.find("http").unwrap()..];
    assert!(link.starts_with(&server.url), "{link}");
    let path = link.trim_start_matches(&server.url).to_string();

    // The page, the export.
    let page = client.get(link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(phone),
        "the manage page shows the registration"
    );
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let export_path = path.replacen('?', "/export?", 1);
    let export: Value = client
        .get(format!("{}{export_path}", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(export["phone"]["value"], phone);
    assert_eq!(export["phone"]["verified"], true);
    assert_eq!(export["addresses"][0]["label"], "home");
    let forged = client
        .get(format!(
            "{}{}",
            server.url,
            export_path.replace("sig=", "sig=0")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "a changed signature is refused");

    // Edit: add an address by postal code (Gent); pause; resume.
    let post = |form: Vec<(&'static str, String)>| {
        let client = client.clone();
        let url = format!("{}{path}", server.url);
        async move { client.post(url).form(&form).send().await.unwrap() }
    };
    let ghent = json!({"circles": [{"lat": 51.0543, "lon": 3.7174, "radius_km": 3}]});
    let saved = post(vec![
        ("lang", "en".into()),
        ("csrf", csrf.clone()),
        ("action", "save".into()),
        ("language", "fr".into()),
        ("sms", "on".into()),
        ("k0_label", "home".into()),
        ("k0_lat", BASTOGNE.0.to_string()),
        ("k0_lon", BASTOGNE.1.to_string()),
        ("new_label", "work".into()),
        ("new_postal", "9000".into()),
    ])
    .await;
    assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());
    assert_eq!(
        api.post("/v1/zones:preview", &json!({"area": ghent}))
            .await
            .body["recipients"],
        1
    );
    let paused = post(vec![
        ("lang", "en".into()),
        ("csrf", csrf.clone()),
        ("action", "pause".into()),
    ])
    .await;
    assert!(paused.text().await.unwrap().contains("paused"));
    assert_eq!(
        api.post("/v1/zones:preview", &json!({"area": zone}))
            .await
            .body["recipients"],
        0,
        "paused: skipped"
    );
    post(vec![
        ("lang", "en".into()),
        ("csrf", csrf.clone()),
        ("action", "resume".into()),
    ])
    .await;
    assert_eq!(
        api.post("/v1/zones:preview", &json!({"area": zone}))
            .await
            .body["recipients"],
        1
    );

    // Delete: everything goes, and the page says what.
    assert!(
        !files_containing(dir.path(), phone).is_empty(),
        "the search finds the number while it is kept"
    );
    let unconfirmed = post(vec![
        ("lang", "en".into()),
        ("csrf", csrf.clone()),
        ("action", "delete".into()),
    ])
    .await;
    assert_eq!(
        unconfirmed.status(),
        422,
        "deletion asks for its confirmation"
    );
    let deleted = post(vec![
        ("lang", "en".into()),
        ("csrf", csrf.clone()),
        ("action", "delete".into()),
        ("confirm", "on".into()),
    ])
    .await
    .text()
    .await
    .unwrap();
    assert!(
        deleted.contains("Your registration is deleted"),
        "{deleted}"
    );
    assert!(
        deleted.contains("addresses: 2") && deleted.contains("deliveries: 1"),
        "{deleted}"
    );
    assert_eq!(
        api.post("/v1/zones:preview", &json!({"area": zone}))
            .await
            .body["recipients"],
        0
    );
    assert_eq!(
        client.get(link).send().await.unwrap().status(),
        403,
        "the link is dead"
    );
    let rows = api
        .get(&format!(
            "/v1/alerts/{}/deliveries",
            first.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rows.body["items"][0]["to"], "", "{}", rows.body);

    // Nothing of the number is left in store.db or queue.db (WAL included).
    let pid = server.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let mut server = server;
    server.child.wait().unwrap();
    assert_eq!(files_containing(dir.path(), phone), Vec::<String>::new());
    assert_eq!(
        files_containing(dir.path(), &phone[1..]),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invitation_code_puts_a_citizen_in_a_group_alerted_wherever_they_live() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "national-centre", "national");
    let governor = operator(dir.path(), "governor", "province:10000");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server.url, &key);

    let made = api
        .post(
            "/v1/groups/rescuers/invitations",
            &json!({"uses": 2, "valid_days": 30}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let code = made.body["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 14, "{code}");
    let refused = Api::new(&server.url, &governor)
        .post(
            "/v1/groups/rescuers/invitations",
            &json!({"uses": 2, "valid_days": 30}),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let bad = api
        .post(
            "/v1/groups/Rescuers!/invitations",
            &json!({"uses": 0, "valid_days": 400}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(
        bad.body["errors"].as_array().unwrap().len(),
        3,
        "{}",
        bad.body
    );

    // Two citizens join with it (lower case, no dashes, still the code); a third cannot.
    let join = |email: &str, code: String| {
        json!({"language": "en", "email": email, "channels": ["email"],
               "addresses": [{"lat": 51.05, "lon": 3.72}], "consent": true, "invitation": code})
    };
    let first = api
        .post("/v1/subscribers", &join("r1@example.be", code.clone()))
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let loose = code.replace('-', "").to_lowercase();
    assert_eq!(
        api.post("/v1/subscribers", &join("r2@example.be", loose))
            .await
            .status,
        201
    );
    let third = api
        .post("/v1/subscribers", &join("r3@example.be", code.clone()))
        .await;
    assert_eq!(third.status, 422, "{}", third.body);
    assert_eq!(third.body["errors"][0]["path"], "invitation");

    // Verified, the rescuer is alerted as a member of the group, far from Ghent.
    let id = first.body["id"].as_str().unwrap();
    let c = code_for(dir.path(), "email", "r1@example.be");
    api.post(
        &format!("/v1/subscribers/{id}:verify"),
        &json!({"contact": "email", "code": c}),
    )
    .await;
    let mut alert = alert_body(json!({}));
    alert.as_object_mut().unwrap().remove("area");
    alert["groups"] = json!(["rescuers"]);
    let created = api.post("/v1/alerts", &alert).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let alert_id = created.body["id"].as_str().unwrap().to_string();
    api.wait_sent(&alert_id, Duration::from_secs(30)).await;
    let got: Vec<Value> = outbox(dir.path(), "email")
        .into_iter()
        .filter(|l| l["kind"] == "alert" && l["alert_id"] == alert_id.as_str())
        .collect();
    assert_eq!(got.len(), 1, "only the verified member: {got:?}");
    assert_eq!(got[0]["to"], "r1@example.be");
}

/// The digits of the last code sent by a call to `to` (read out one by one).
fn call_code_for(dir: &std::path::Path, to: &str) -> String {
    let line = outbox(dir, "voice")
        .into_iter()
        .rev()
        .find(|l| l["kind"] == "verification" && l["to"] == to)
        .unwrap_or_else(|| panic!("no call with a code to {to}"));
    let text = line["text"].as_str().unwrap();
    let first = text.split(". ").next().unwrap();
    let digits: String = first.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(digits.len(), 6, "{line}");
    assert_eq!(text.matches(first).count(), 2, "read twice: {line}");
    digits
}

#[tokio::test(flavor = "multi_thread")]
async fn a_landline_signs_up_by_call_and_is_alerted_by_call_never_by_sms() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "national-centre", "national");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server.url, &key);
    // A Bastogne landline (area code 061).
    let landline = "+3261212345";

    // SMS to a landline: refused, saying what to choose instead.
    let body = signup_body(&api, landline, None, &["sms"]).await;
    let refused = api.post("/v1/subscribers", &body).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        refused.body["errors"][0]["path"], "channels",
        "{}",
        refused.body
    );
    assert!(
        refused.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("choose voice"),
        "{}",
        refused.body
    );
    // A premium-rate number gets no code at all.
    let body = signup_body(&api, "+3290012345", None, &["voice"]).await;
    let refused = api.post("/v1/subscribers", &body).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("special service"),
        "{}",
        refused.body
    );

    // Voice: the code comes by a call, never by SMS.
    let body = signup_body(&api, landline, None, &["voice"]).await;
    let started = api.post("/v1/subscribers", &body).await;
    assert_eq!(started.status, 201, "{}", started.body);
    assert_eq!(
        started.body["codes_sent"],
        json!(["phone"]),
        "{}",
        started.body
    );
    assert!(
        outbox(dir.path(), "sms")
            .iter()
            .all(|l| l["to"] != landline),
        "no SMS to a landline"
    );
    let id = started.body["id"].as_str().unwrap().to_string();
    let code = call_code_for(dir.path(), landline);
    let ok = api
        .post(
            &format!("/v1/subscribers/{id}:verify"),
            &json!({"contact": "phone", "code": code}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["state"], "active");

    // An operator's own subscriber on a landline who chose SMS is called too.
    let imported = api
        .post(
            "/v1/subscribers:import",
            &json!({"subscribers": [{
                "external_id": "crm-1", "language": "nl", "phone": "+3261223344",
                "channels": ["sms"], "addresses": [{"lat": BASTOGNE.0, "lon": BASTOGNE.1}]
            }]}),
        )
        .await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert_eq!(imported.body["imported"], 1, "{}", imported.body);

    // An SMS alert reaches both landlines by a call, and no SMS goes to them.
    let zone = json!({"circles": [{"lat": BASTOGNE.0, "lon": BASTOGNE.1, "radius_km": 3}]});
    let mut alert = alert_body(zone);
    alert["channels"] = json!(["sms"]);
    let created = api.post("/v1/alerts", &alert).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let alert_id = created.body["id"].as_str().unwrap().to_string();
    api.wait_sent(&alert_id, Duration::from_secs(30)).await;
    let mut called: Vec<String> = outbox(dir.path(), "voice")
        .into_iter()
        .filter(|l| l["kind"] == "alert" && l["alert_id"] == alert_id.as_str())
        .map(|l| l["to"].as_str().unwrap().to_string())
        .collect();
    called.sort();
    assert_eq!(called, vec!["+3261212345", "+3261223344"]);
    assert!(
        outbox(dir.path(), "sms")
            .iter()
            .all(|l| l["to"] != landline && l["to"] != "+3261223344"),
        "never an SMS to a landline"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hourly_code_budget_and_the_per_address_limit_refuse_codes_while_alerts_still_go() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "national-centre", "national");
    let server = Server::start(dir.path(), &[("BEALERT_SIGNUP_CODES_PER_HOUR", "7")]);
    let api = Api::new(&server.url, &key);
    let email_signup = |email: &str| {
        json!({
            "language": "nl", "email": email, "channels": ["email"],
            "addresses": [{"lat": BASTOGNE.0, "lon": BASTOGNE.1}], "consent": true
        })
    };

    // One address gets at most 5 codes a day, however many registrations ask.
    for _ in 0..6 {
        let started = api
            .post("/v1/subscribers", &email_signup("same@example.be"))
            .await;
        assert_eq!(started.status, 201, "{}", started.body);
    }
    let to_address = outbox(dir.path(), "email")
        .iter()
        .filter(|l| l["to"] == "same@example.be")
        .count();
    assert_eq!(to_address, 5);

    // Codes 6 and 7 of the hour's 7; then nothing new is stored or sent.
    let first = api
        .post("/v1/subscribers", &email_signup("a@example.be"))
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let id = first.body["id"].as_str().unwrap().to_string();
    let second = api
        .post("/v1/subscribers", &email_signup("b@example.be"))
        .await;
    assert_eq!(second.status, 201, "{}", second.body);
    let refused = api
        .post("/v1/subscribers", &email_signup("c@example.be"))
        .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("too many codes were sent this hour"),
        "{}",
        refused.body
    );
    assert!(
        outbox(dir.path(), "email")
            .iter()
            .all(|l| l["to"] != "c@example.be"),
        "no code once the budget is spent"
    );
    let stats = api.get("/v1/signup/stats").await;
    assert_eq!(
        stats.body["counters"]["refused_address"], 1,
        "{}",
        stats.body
    );
    assert_eq!(
        stats.body["counters"]["refused_budget"], 1,
        "{}",
        stats.body
    );
    assert_eq!(stats.body["counters"]["signups"], 8, "{}", stats.body);

    // Alerts never count against it: the verified citizen is alerted.
    let code = code_for(dir.path(), "email", "a@example.be");
    let ok = api
        .post(
            &format!("/v1/subscribers/{id}:verify"),
            &json!({"contact": "email", "code": code}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let zone = json!({"circles": [{"lat": BASTOGNE.0, "lon": BASTOGNE.1, "radius_km": 3}]});
    let created = api.post("/v1/alerts", &alert_body(zone)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let alert_id = created.body["id"].as_str().unwrap().to_string();
    api.wait_sent(&alert_id, Duration::from_secs(30)).await;
    assert!(
        outbox(dir.path(), "email")
            .iter()
            .any(|l| l["kind"] == "alert" && l["to"] == "a@example.be"),
        "the alert went out with the budget spent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn codes_leave_through_the_signups_own_providers_not_the_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "national-centre", "national");
    let server = Server::start(
        dir.path(),
        &[
            ("BEALERT_CODE_SMS_PROVIDERS", "outbox:codes"),
            ("BEALERT_CODE_EMAIL_PROVIDERS", "outbox:codes"),
        ],
    );
    let api = Api::new(&server.url, &key);
    let body = signup_body(
        &api,
        "+32470111333",
        Some("codes@example.be"),
        &["sms", "email"],
    )
    .await;
    let started = api.post("/v1/subscribers", &body).await;
    assert_eq!(started.status, 201, "{}", started.body);
    let id = started.body["id"].as_str().unwrap().to_string();
    for channel in ["sms", "email"] {
        let codes: Vec<Value> = outbox(dir.path(), channel)
            .into_iter()
            .filter(|l| l["kind"] == "verification")
            .collect();
        assert_eq!(codes.len(), 1, "{codes:?}");
        assert_eq!(codes[0]["provider"], "codes", "{codes:?}");
    }
    let code = code_for(dir.path(), "sms", "+32470111333");
    let ok = api
        .post(
            &format!("/v1/subscribers/{id}:verify"),
            &json!({"contact": "phone", "code": code}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let zone = json!({"circles": [{"lat": BASTOGNE.0, "lon": BASTOGNE.1, "radius_km": 3}]});
    let created = api.post("/v1/alerts", &alert_body(zone)).await;
    let alert_id = created.body["id"].as_str().unwrap().to_string();
    api.wait_sent(&alert_id, Duration::from_secs(30)).await;
    let alerts: Vec<Value> = outbox(dir.path(), "sms")
        .into_iter()
        .filter(|l| l["kind"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].get("provider").is_none(),
        "the alert left through the alerts' own provider: {alerts:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_without_script_never_waits_it_checks_the_forms_age() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let fresh_token = || async {
        let page = client
            .get(format!("{}/?lang=en", server.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        page.split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    let confirm = |csrf: String, phone: &'static str| {
        let client = client.clone();
        let url = format!("{}/signup/confirm", server.url);
        async move {
            let form = [
                ("lang", "en".to_string()),
                ("language", "en".to_string()),
                ("csrf", csrf),
                ("phone", phone.to_string()),
                ("sms", "on".to_string()),
                ("consent", "on".to_string()),
                ("g0_lat", BASTOGNE.0.to_string()),
                ("g0_lon", BASTOGNE.1.to_string()),
            ];
            let res = client.post(url).form(&form).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };

    // Sent at once: answered at once (no wait in the server), no code.
    let (status, html) = confirm(fresh_token().await, "+32470555301").await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("That was quick"), "{html}");
    assert!(
        outbox(dir.path(), "sms").is_empty(),
        "no code for a form that came back at once"
    );
    // That a form old enough goes through, once, is a clock:: test (on a
    // test clock, instead of waiting five seconds here).
}

/// A server whose app has no signup (as a home that sets none up) answers
/// the signup's routes as it always did: the JSON routes and the page a
/// problem 404 that says so, a bad body still its 4xx first, the forms and
/// links refused as from elsewhere. The use cases cannot be reached at all
/// there: `App::signup` gives none.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_the_signup_answers_its_routes_as_before() {
    use bealert_app::App;
    use bealert_app::usecases::AppConfig;
    use bealert_app::usecases::signup::NOT_OFFERED;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let embedded = bealert_embedded::Embedded::open(dir.path()).unwrap();
    let app = App::new(embedded.ports(), AppConfig::default());
    assert!(app.signup().is_none());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = bealert_http::signup_router(Arc::new(app));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let api = Api::new(&url, "no-key");
    let not_offered = |a: &common::Answer, what: &str| {
        assert_eq!(a.status, 404, "{what}: {}", a.body);
        assert_eq!(a.body["detail"], NOT_OFFERED, "{what}");
        assert!(
            a.content_type.contains("problem+json"),
            "{what}: {}",
            a.content_type
        );
    };

    let body = json!({
        "language": "fr", "phone": "+32470111222", "channels": ["sms"],
        "addresses": [{"lat": BASTOGNE.0, "lon": BASTOGNE.1}], "consent": true,
    });
    not_offered(&api.get("/v1/signup/challenge").await, "challenge");
    not_offered(&api.post("/v1/subscribers", &body).await, "signup");
    not_offered(
        &api.post(
            "/v1/subscribers/x:verify",
            &json!({"contact": "phone", "code": "123456"}),
        )
        .await,
        "verify",
    );
    not_offered(
        &api.post("/v1/subscribers/x:resend", &json!({"contact": "phone"}))
            .await,
        "resend",
    );
    not_offered(
        &api.post("/v1/signup/link", &json!({"contact": "+32470111222"}))
            .await,
        "link",
    );
    let page = api.send(reqwest::Method::GET, "/", None, None, None).await;
    not_offered(&page, "the page");
    let export = api
        .send(
            reqwest::Method::GET,
            "/manage/x/export?until=1&sig=x",
            None,
            None,
            None,
        )
        .await;
    not_offered(&export, "the export");

    // A bad body or contact is still refused for itself first.
    let bad = api
        .post("/v1/subscribers", &json!({"language": "fr"}))
        .await;
    assert!(matches!(bad.status, 400 | 422), "{}", bad.body);
    let bad = api
        .post("/v1/subscribers/x:resend", &json!({"contact": "fax"}))
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);

    // Forms carry no token there: sent back, they are the form again (422);
    // a link is refused (403).
    for path in ["/signup", "/signup/confirm", "/signup/verify", "/manage"] {
        let a = api
            .send(
                reqwest::Method::POST,
                path,
                Some(b"csrf=1.x&contact=%2B32470111222".to_vec()),
                None,
                Some("application/x-www-form-urlencoded"),
            )
            .await;
        assert_eq!(a.status, 422, "{path}: {}", a.body);
        assert!(a.content_type.starts_with("text/html"), "{path}");
    }
    let link = api
        .send(
            reqwest::Method::GET,
            "/manage/x?until=1&sig=x",
            None,
            None,
            None,
        )
        .await;
    assert_eq!(link.status, 403, "{}", link.body);
}
