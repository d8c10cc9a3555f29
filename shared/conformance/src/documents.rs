//! Conformance of the document store: put replaces whole, get, list by
//! kind and id prefix (in id order), delete.

use bealert_app::ports::DocumentStore;
use serde_json::json;

pub async fn document_store(store: &dyn DocumentStore) {
    assert_eq!(store.get_document("template", "flood").await.unwrap(), None);
    store
        .put_document("template", "flood", &json!({"event": "Flood", "n": 1}))
        .await
        .unwrap();
    store
        .put_document("template", "flood", &json!({"event": "Overstroming"}))
        .await
        .unwrap();
    assert_eq!(
        store.get_document("template", "flood").await.unwrap(),
        Some(json!({"event": "Overstroming"})),
        "a put replaces the document whole"
    );
    store
        .put_document("template", "chemical", &json!({"event": "Chemical leak"}))
        .await
        .unwrap();
    store
        .put_document("drill-run", "d1#0002", &json!({"run": 2}))
        .await
        .unwrap();
    store
        .put_document("drill-run", "d1#0001", &json!({"run": 1}))
        .await
        .unwrap();
    store
        .put_document("drill-run", "d2#0001", &json!({"run": 1}))
        .await
        .unwrap();
    let templates = store.documents("template", "").await.unwrap();
    let names: Vec<&str> = templates.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(names, ["chemical", "flood"], "by id, of that kind only");
    let runs = store.documents("drill-run", "d1#").await.unwrap();
    assert_eq!(
        runs,
        vec![
            ("d1#0001".to_string(), json!({"run": 1})),
            ("d1#0002".to_string(), json!({"run": 2}))
        ],
        "an id prefix selects"
    );
    // A large document (a drill's area) comes back whole.
    let big = json!({"area": vec![[4.35, 50.85]; 20_000]});
    store.put_document("drill", "big", &big).await.unwrap();
    assert_eq!(store.get_document("drill", "big").await.unwrap(), Some(big));
    assert!(store.delete_document("template", "flood").await.unwrap());
    assert!(!store.delete_document("template", "flood").await.unwrap());
    assert_eq!(store.get_document("template", "flood").await.unwrap(), None);
}
