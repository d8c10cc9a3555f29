//! What several modules need: tables of their own on DynamoDB Local, a store
//! over them, an alert's message to send.

use bealert_app::ports::{MessageKind, OutboundMessage};
use bealert_aws::dynamo::schema::create_tables;
use bealert_aws::{DynamoStore, Tables, testkit};
use bealert_core::{AlertId, Channel, Language, SubscriberId};

/// Fresh tables on DynamoDB Local, named after `what` under a unique prefix
/// (tests in this binary run in parallel), and a client to them.
pub async fn tables(what: &str) -> (aws_sdk_dynamodb::Client, Tables) {
    testkit::require_stack().await;
    let client = testkit::dynamodb();
    let tables = Tables::with_prefix(&testkit::unique_prefix(what));
    create_tables(&client, &tables).await.unwrap();
    (client, tables)
}

/// A store over fresh tables of its own.
pub async fn store(what: &str) -> DynamoStore {
    let (client, tables) = tables(what).await;
    DynamoStore::new(client, tables)
}

/// An alert's message to one recipient, of a new alert and a random
/// subscriber (so its idempotency key is new).
pub fn alert_message(channel: Channel, to: &str, language: Language) -> OutboundMessage {
    let alert = AlertId::new();
    let sub = SubscriberId::from_random(rand::random());
    OutboundMessage {
        key: bealert_core::delivery::idempotency_key(alert, channel, sub),
        kind: MessageKind::Alert {
            alert_id: alert,
            subscriber_id: sub,
        },
        channel,
        to: to.into(),
        language,
        subject: Some("bealert: Chemical leak".into()),
        text: "Sluit ramen en deuren".into(),
        signature: None,
        not_after: i64::MAX,
        provider: None,
        unsubscribe: None,
    }
}
