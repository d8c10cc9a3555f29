//! `bealert bench`, Alert-SMS: three synthetic networks of 10,000 cells
//! each (sites where people live, footprints derived as Voronoi regions),
//! their loading, the estimate for zones of growing size, and an alert to a
//! province-sized zone through the network simulator.

use bealert_app::App;
use bealert_core::operator::Operator;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NETWORKS: [&str; 3] = ["proximus", "orange", "base"];

fn median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (
        v[v.len() / 2],
        v[((v.len() - 1) as f64 * 0.9).round() as usize],
    )
}

pub async fn run(app: Arc<App>, op: &Operator, cells: usize, runs: usize) -> anyhow::Result<()> {
    println!(
        "\nalert-sms: {} networks of {cells} cells (sites where people live; footprints derived)",
        NETWORKS.len()
    );
    let networks = app.networks_offered().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut keys = Vec::new();
    for (i, name) in NETWORKS.iter().enumerate() {
        let (_, key) = networks
            .create_network(name)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let body = tokio::task::spawn_blocking(move || {
            bealert_synth::network_sites(100 + i as u64, cells).to_string()
        })
        .await?;
        let t = Instant::now();
        let r = networks
            .replace_cells(Some(&format!("Bearer {key}")), name, body.clone().into())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "alert-sms: load {name}: {} cells ({:.1} MB of Points, Voronoi footprints derived) in {:.2} s (goal <= 2 s)",
            r.cells,
            body.len() as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        keys.push(key);
    }
    // The same cells as a file of polygons (what a network with planned
    // footprints sends): the derivation is not timed.
    let polygons = tokio::task::spawn_blocking(move || {
        let sites = bealert_synth::network_sites(102, cells);
        let points: Vec<geo::Point<f64>> = sites["features"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let c = &f["geometry"]["coordinates"];
                geo::Point::new(c[0].as_f64().unwrap_or(0.0), c[1].as_f64().unwrap_or(0.0))
            })
            .collect();
        let footprints =
            bealert_core::network::voronoi_footprints(&points).map_err(|e| anyhow::anyhow!(e))?;
        let features: Vec<serde_json::Value> = sites["features"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(footprints)
            .map(|(f, fp)| {
                serde_json::json!({"type": "Feature", "properties": f["properties"],
                    "geometry": {"type": "MultiPolygon", "coordinates": fp}})
            })
            .collect();
        anyhow::Ok(
            serde_json::json!({"type": "FeatureCollection", "features": features}).to_string(),
        )
    })
    .await??;
    let t = Instant::now();
    let r = networks
        .replace_cells(
            Some(&format!("Bearer {}", keys[2])),
            NETWORKS[2],
            polygons.clone().into(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "alert-sms: load {}: {} cells ({:.1} MB of MultiPolygons) in {:.2} s (goal <= 2 s)",
        NETWORKS[2],
        r.cells,
        polygons.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    use bealert_synth::cantons;
    let province =
        serde_json::json!({"circles": [{"lat": 51.2194, "lon": 4.4025, "radius_km": 30.0}]});
    let zones: Vec<(&str, serde_json::Value, f64)> = vec![
        (
            "1,000-vertex polygon, Gent",
            serde_json::json!({"geojson": bealert_synth::wobbly_polygon(51.0543, 3.7174, 12.0, 1000, 9)}),
            30.0,
        ),
        (
            "province-sized: 30 km circle, Antwerpen (2,827 km²)",
            province.clone(),
            150.0,
        ),
        (
            "canton Bastogne (22,070 v., 569 km²)",
            serde_json::json!({"geojson": cantons::geometry(cantons::BASTOGNE)}),
            150.0,
        ),
        (
            "whole country (643 vertices)",
            serde_json::json!({"geojson": serde_json::from_str::<serde_json::Value>(bealert_synth::BELGIUM_GEOJSON)?}),
            300.0,
        ),
    ];
    for (name, area, goal) in &zones {
        let body = serde_json::json!({ "area": area }).to_string();
        let t = Instant::now();
        let first = networks
            .estimate_zone(op, body.as_bytes())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .estimate;
        let cold = t.elapsed().as_secs_f64() * 1000.0;
        let mut times = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            networks
                .estimate_zone(op, body.as_bytes())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let (med, p90) = median(times);
        let cells: usize = first.networks.values().map(|n| n.cells).sum();
        println!(
            "alert-sms: estimate {name:<52} {:>9.0} people, {cells:>6} cells, overshoot {:>7.1} km²: median {med:>6.1} ms, p90 {p90:.1}, first (cells read) {cold:.1} ms (goal <= {goal} ms)",
            first.estimated_present, first.overshoot_km2
        );
    }

    let alert = serde_json::json!({
        "status": "Exercise", "event": "Benchmark", "severity": "Severe", "urgency": "Immediate", "certainty": "Observed",
        "messages": {"nl": "Oefening: sluit ramen en deuren.", "fr": "Exercice : fermez portes et fenetres.", "en": "Exercise: close windows and doors."},
        "area": province, "channels": [], "broadcast": {"mode": "cell_broadcast"}
    });
    let t = Instant::now();
    let created = app
        .create_alert(op, alert.to_string().as_bytes())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let accepted = t.elapsed().as_secs_f64();
    loop {
        let v = app
            .alert_view(op, &created.id.to_string())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if v.state.is_final() {
            let requested: u64 = v.networks.values().map(|n| n.requested).sum();
            let delivered: u64 = v.networks.values().map(|n| n.delivered).sum();
            println!(
                "alert-sms: alert to a province through the simulator: {} networks, {requested} devices requested, {delivered} delivered; accepted in {:.0} ms, every network's report in {:.2} s (goal <= 2 s)",
                v.networks.len(),
                accepted * 1000.0,
                t.elapsed().as_secs_f64()
            );
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("the broadcast alert did not finish in 120 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
