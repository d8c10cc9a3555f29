//! `bealert bench`, the signup part: verified signups per second through
//! the page's form endpoints (codes read from the outbox), how soon a new
//! citizen is reachable, and the page's weight.

use bealert_app::App;
use std::collections::HashMap;
use std::io::{BufRead, Seek};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Somewhere at sea off Ostend: no synthetic subscriber lives there, so a
/// preview there counts the bench's citizens only.
const SEA: (f64, f64) = (51.60, 2.50);

fn between<'a>(html: &'a str, before: &str) -> Option<&'a str> {
    let start = html.find(before)? + before.len();
    html[start..].split('"').next()
}

/// Follows the e-mail outbox: the last code sent to each address.
fn spawn_code_reader(
    file: PathBuf,
    codes: Arc<Mutex<HashMap<String, String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    std::thread::spawn(move || {
        let mut offset = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(mut f) = std::fs::File::open(&file)
                && f.seek(std::io::SeekFrom::Start(offset)).is_ok()
            {
                let mut reader = std::io::BufReader::new(f);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if !line.ends_with('\n') {
                        break;
                    }
                    offset += line.len() as u64;
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                        && v["kind"] == "verification"
                        && let (Some(to), Some(text)) = (v["to"].as_str(), v["text"].as_str())
                        && let Some(code) = text
                            .split(|c: char| !c.is_ascii_digit())
                            .find(|w| w.len() == 6)
                        && let Ok(mut map) = codes.lock()
                    {
                        map.insert(to.to_string(), code.to_string());
                    }
                    line.clear();
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
}

async fn one_signup(
    client: &reqwest::Client,
    url: &str,
    csrf: &str,
    i: usize,
    codes: &Mutex<HashMap<String, String>>,
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let email = format!("bench-{i}@example.be");
    let lang = ["nl", "fr", "de", "en"][i % 4];
    let form = |extra: &[(&str, String)]| {
        let mut f: Vec<(String, String)> = vec![
            ("lang".into(), lang.into()),
            ("csrf".into(), csrf.into()),
            ("email".into(), email.clone()),
            ("language".into(), lang.into()),
            ("email_channel".into(), "on".into()),
            ("a0_label".into(), "home".into()),
            ("consent".into(), "on".into()),
        ];
        f.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        f
    };
    // 1. The form: the address is looked up, the point shown to confirm.
    let confirm = client
        .post(format!("{url}/signup"))
        .form(&form(&[("a0_postal", "1000".into())]))
        .send()
        .await?
        .text()
        .await?;
    anyhow::ensure!(
        confirm.contains("g0_lat"),
        "no confirmation page: {confirm:.300}"
    );
    // 2. Confirmed (the bench stands at sea, where nobody else lives).
    let code_page = client
        .post(format!("{url}/signup/confirm"))
        .form(&form(&[
            ("g0_lat", SEA.0.to_string()),
            ("g0_lon", SEA.1.to_string()),
        ]))
        .send()
        .await?
        .text()
        .await?;
    let id = between(&code_page, "name=\"id\" value=\"").ok_or_else(|| anyhow::anyhow!("no id"))?;
    let token = between(&code_page, "name=\"token\" value=\"")
        .ok_or_else(|| anyhow::anyhow!("no token"))?;
    // 3. The code, from the outbox.
    let code = loop {
        if let Some(c) = codes.lock().ok().and_then(|m| m.get(&email).cloned()) {
            break c;
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "no code for {email}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let done = client
        .post(format!("{url}/signup/verify"))
        .form(&[
            ("lang", lang),
            ("id", id),
            ("token", token),
            ("contact", "email"),
            ("code", &code),
        ])
        .send()
        .await?
        .text()
        .await?;
    anyhow::ensure!(
        done.contains("<h1>") && !done.contains("code-error"),
        "not verified: {done:.300}"
    );
    Ok(t.elapsed())
}

pub async fn run(
    app: Arc<App>,
    dir: &Path,
    signups: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    // No per-client limit here: every bench signup comes from one address.
    let router = bealert_http::router(app.clone());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let client = reqwest::Client::new();

    // The page's weight, and anything it would fetch elsewhere.
    let page = client
        .get(format!("{url}/"))
        .header("accept-language", "fr-BE")
        .send()
        .await?
        .text()
        .await?;
    let css = client
        .get(format!("{url}/static/signup.css"))
        .send()
        .await?
        .bytes()
        .await?
        .len();
    let js = client
        .get(format!("{url}/static/signup.js"))
        .send()
        .await?
        .bytes()
        .await?
        .len();
    let external = page.matches("http://").count()
        + page.matches("https://").count()
        + page.matches("//").count()
        - page.matches("://").count();
    println!(
        "\nsignup page: HTML {:.1} KB + CSS {:.1} KB + script {:.1} KB = {:.1} KB (goal <= 50 KB); {} third-party references",
        page.len() as f64 / 1000.0,
        css as f64 / 1000.0,
        js as f64 / 1000.0,
        (page.len() + css + js) as f64 / 1000.0,
        external
    );
    let csrf = between(&page, "name=\"csrf\" value=\"")
        .unwrap_or_default()
        .to_string();

    let codes = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    spawn_code_reader(
        dir.join("outbox").join("email.jsonl"),
        codes.clone(),
        stop.clone(),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, csrf, codes, next) = (
            client.clone(),
            url.clone(),
            csrf.clone(),
            codes.clone(),
            next.clone(),
        );
        workers.spawn(async move {
            let mut took = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= signups {
                    return Ok::<_, anyhow::Error>(took);
                }
                took.push(one_signup(&client, &url, &csrf, i, &codes).await?);
            }
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = workers.join_next().await {
        latencies.extend(done??);
    }
    let elapsed = t.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1000.0
    };
    println!(
        "signup: {} verified signups through the form endpoints (form, confirm, code from the outbox, verify) in {elapsed:.2} s = {:.0}/s (goal >= 500/s), {concurrency} at once; per signup p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    );

    // Reachable at once: the verify answer comes after the subscriber is stored.
    let (op, _) = app
        .create_operator(&format!("bench-signup-{}", std::process::id()), "national")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = Instant::now();
    let preview = app
        .preview(
            &op,
            serde_json::json!({"area": {"circles": [{"lat": SEA.0, "lon": SEA.1, "radius_km": 1}]}})
                .to_string()
                .as_bytes(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "signup: reachable when verify answers (stored before it does): a preview right after counts {} of {} ({:.1} ms)",
        preview.recipients,
        latencies.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    server.abort();
    Ok(())
}
