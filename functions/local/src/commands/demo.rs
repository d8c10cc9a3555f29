//! `bealert demo`: a self-contained tour on a temporary data directory.

use crate::local::{Home, Local, Tuning};
use crate::scenario;
use bealert_core::Channel;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Synthetic citizens to register.
    #[arg(long, default_value_t = 20_000)]
    subscribers: usize,
    /// Keep the data directory (and its outbox) instead of deleting it.
    #[arg(long)]
    keep: bool,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("bealert-demo-").tempdir()?;
    let dir = tmp.path().to_path_buf();
    println!("bealert demo — data directory {}", dir.display());
    let local = Local::start(&Home::Embedded(dir.clone()), &Tuning::default()).await?;
    let app = local.app.clone();

    let (op, _key) = app
        .create_operator("demo-crisis-centre", "national")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    println!(
        "\n1. Registering {} synthetic citizens around Belgian cities",
        args.subscribers
    );
    let bodies = scenario::synthetic_bodies(args.subscribers, 2026, 5_000);
    let imp = scenario::import(&app, &op, bodies, args.subscribers, true).await?;
    println!(
        "   {} registered ({} rejected) in {:.2} s — {:.0} per second",
        imp.imported,
        imp.rejected,
        imp.elapsed.as_secs_f64(),
        imp.imported as f64 / imp.elapsed.as_secs_f64()
    );

    println!("\n   Three mobile networks upload their cells (Alert-SMS; simulated networks)");
    let networks = app.networks_offered().map_err(|e| anyhow::anyhow!("{e}"))?;
    for (i, name) in ["proximus", "orange", "base"].into_iter().enumerate() {
        let (_, key) = networks
            .create_network(name)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let sites = bealert_synth::network_sites(700 + i as u64, 3_000).to_string();
        let r = networks
            .replace_cells(Some(&format!("Bearer {key}")), name, sites.into())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "   {name}: {} cells, {} active devices, footprints derived from the sites in {:.0} ms",
            r.cells, r.active_devices, r.elapsed_ms
        );
    }

    let area = serde_json::json!({"circles": [{"lat": 50.889, "lon": 4.405, "radius_km": 7.0}]});
    println!("\n2. Chemical fire at Haren (Brussels): a 7 km circle. Who would be reached?");
    let preview = app
        .preview(
            &op,
            serde_json::json!({"area": area}).to_string().as_bytes(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "   {} registered citizens ({} H3 cells, {} wholly inside), found in {:.1} ms",
        preview.recipients, preview.cells.total, preview.cells.interior, preview.elapsed_ms
    );
    println!("   by channel:  {}", fmt_map(&preview.by_channel));
    println!("   by language: {}", fmt_map(&preview.by_language));
    if let Some(e) = &preview.estimate {
        println!(
            "   present in the zone by the networks' cells: about {:.0} people ({} devices on the cells a broadcast uses; {:.1} km² and about {:.0} people outside the zone would get it too)",
            e.estimated_present, e.reach_devices, e.overshoot_km2, e.overshoot_people
        );
    }

    println!(
        "\n3. Sending the alert (an exercise) in nl, fr, de and en, on SMS, voice and e-mail, and by cell broadcast"
    );
    let alert = serde_json::json!({
        "status": "Exercise", "event": "Chemical fire", "severity": "Severe",
        "urgency": "Immediate", "certainty": "Observed",
        "messages": {
            "nl": "Brand in chemisch bedrijf in Haren. Blijf binnen, sluit ramen en deuren, zet ventilatie uit.",
            "fr": "Incendie dans une entreprise chimique à Haren. Restez à l'intérieur, fermez portes et fenêtres, coupez la ventilation.",
            "de": "Brand in einem Chemiebetrieb in Haren. Bleiben Sie drinnen, schließen Sie Fenster und Türen.",
            "en": "Fire at a chemical plant in Haren. Stay indoors, close windows and doors, turn off ventilation."
        },
        "area": area,
        "broadcast": {"mode": "cell_broadcast"}
    });
    let started = Instant::now();
    let created = app
        .create_alert(&op, alert.to_string().as_bytes())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("   alert {} accepted", created.id);
    let view = scenario::follow(&app, &op, created.id, true, Duration::from_secs(300)).await?;
    let took = started.elapsed();
    println!(
        "   state {:?}: {} recipients, every delivery final {:.2} s after creation",
        view.state,
        view.recipients,
        took.as_secs_f64()
    );
    let created_at = view.created_at.clone();
    for (name, n) in &view.networks {
        println!(
            "   {name}: {:?} — {} cells, {} devices requested, {} delivered",
            n.state, n.cells, n.requested, n.delivered
        );
    }

    println!("\n4. What left, per channel and language (times after the alert was created)");
    for channel in Channel::ALL {
        let path = dir.join("outbox").join(format!("{channel}.jsonl"));
        let by_lang = scenario::outbox_by_language(&path, created.id)?;
        for (lang, t) in &by_lang {
            println!(
                "   {:<5} {lang}: {:>6} messages, first at +{:>6.0} ms, last at +{:>6.0} ms",
                channel.code(),
                t.count,
                scenario::ms_between(&created_at, &t.first_at),
                scenario::ms_between(&created_at, &t.last_at),
            );
        }
    }
    let sms = scenario::outbox_by_language(&dir.join("outbox").join("sms.jsonl"), created.id)?;
    println!("\n   A text per language, as the SMS gateway received it:");
    for (lang, t) in &sms {
        println!("   [{lang}] {}", t.sample);
    }

    local.stop().await;
    if args.keep {
        let kept = tmp.keep();
        println!(
            "\nKept {} — outbox/<channel>.jsonl holds every message.",
            kept.display()
        );
    } else {
        println!("\nDone. (Run with --keep to inspect the outbox files.)");
    }
    Ok(())
}

fn fmt_map<K: std::fmt::Display, V: std::fmt::Display>(
    m: &std::collections::BTreeMap<K, V>,
) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
