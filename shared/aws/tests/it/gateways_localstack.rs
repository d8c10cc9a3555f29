//! Gateways against LocalStack (SNS, SES) with the sent-key log in DynamoDB Local.

use crate::common::{alert_message, store};
use bealert_app::ports::{Gateway, OutboundMessage, Sent};
use bealert_aws::gateways::{LoggedGateway, SesEmail, SnsSms};
use bealert_aws::{DynamoStore, testkit};
use bealert_conformance as conformance;
use bealert_core::{Channel, Language};
use std::sync::Arc;

async fn log_store() -> Arc<DynamoStore> {
    Arc::new(store("gw").await)
}

#[tokio::test]
async fn logged_sns_gateway_conforms() {
    let log = log_store().await;
    let open = move || -> Arc<dyn Gateway> {
        Arc::new(LoggedGateway::new(
            SnsSms {
                client: testkit::sns(),
                sender_id: Some("BEALERT".into()),
            },
            log.clone(),
        ))
    };
    conformance::gateway(&open).await;
}

/// A French alert's message with `text`.
fn message(channel: Channel, to: &str, text: &str) -> OutboundMessage {
    OutboundMessage {
        subject: Some("bealert: Inondation".into()),
        text: text.into(),
        ..alert_message(channel, to, Language::Fr)
    }
}

#[tokio::test]
async fn sent_sms_and_email_can_be_read_back_from_localstack() {
    let log = log_store().await;
    let token = format!("{:08x}", rand::random::<u32>());
    let sms = LoggedGateway::new(
        SnsSms {
            client: testkit::sns(),
            sender_id: None,
        },
        log.clone(),
    );
    let text = format!("Montez à l'étage ({token})");
    let r = sms
        .send(&[message(Channel::Sms, "+32471999001", &text)])
        .await;
    // Taken under the service's own id, which its delivery status names.
    assert!(
        matches!(&r[..], [Ok(Sent::Accepted(h))] if h.id.as_deref().is_some_and(|i| !i.is_empty())),
        "{r:?}"
    );

    let ses = testkit::ses();
    ses.verify_email_identity()
        .email_address("alerts@bealert.example")
        .send()
        .await
        .unwrap();
    let email = LoggedGateway::new(
        SesEmail {
            client: ses,
            from: "alerts@bealert.example".into(),
            configuration_set: None,
        },
        log,
    );
    let r = email
        .send(&[message(Channel::Email, "chloe@example.be", &text)])
        .await;
    // Taken under the service's own id, which its delivery status names.
    assert!(
        matches!(&r[..], [Ok(Sent::Accepted(h))] if h.id.as_deref().is_some_and(|i| !i.is_empty())),
        "{r:?}"
    );

    let sent_sms = testkit::localstack_sent("/_aws/sns/sms-messages?region=eu-west-1").await;
    let all = sent_sms["sms_messages"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let found: Vec<_> = all
        .values()
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .filter(|m| m["Message"].as_str().is_some_and(|t| t.contains(&token)))
        .collect();
    assert_eq!(found.len(), 1, "{sent_sms}");
    assert_eq!(found[0]["PhoneNumber"], "+32471999001");

    let sent_mail = testkit::localstack_sent("/_aws/ses").await;
    let mails: Vec<_> = sent_mail["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.to_string().contains(&token))
        .collect();
    assert_eq!(mails.len(), 1, "{sent_mail}");
    let header = |name| testkit::mail_header(&mails[0], name);
    assert_eq!(header("To").as_deref(), Some("chloe@example.be"));
    assert_eq!(header("Subject").as_deref(), Some("bealert: Inondation"));
    assert!(header("Message-ID").is_some_and(|id| id.ends_with("@bealert.example>")));
    assert_eq!(header("Content-Language").as_deref(), Some("fr"));
    assert!(
        header("Content-Type").is_some_and(|t| t.starts_with("multipart/alternative")),
        "a text and an HTML part"
    );
}

/// Drills as EventBridge Scheduler schedules on LocalStack (which cannot
/// invoke a Lambda without Docker: the schedule is checked through the
/// API; the drill function's handler is tested in-process).
#[tokio::test]
async fn a_drill_is_an_eventbridge_schedule_in_belgian_time() {
    use bealert_app::ports::DrillScheduler;
    use bealert_aws::drills::{EventBridgeDrills, schedule_name};
    testkit::require_stack().await;
    let drills = EventBridgeDrills::new(
        &testkit::sdk_config(),
        "arn:aws:lambda:eu-west-1:000000000000:function:bealert-test-drill".into(),
        "arn:aws:iam::000000000000:role/bealert-test-drill-scheduler".into(),
        "default".into(),
    );
    let id = testkit::unique_prefix("drill");
    drills
        .schedule(&id, "cron(0 10 ? * MON#1 *)")
        .await
        .unwrap();
    let got = drills
        .client()
        .get_schedule()
        .name(schedule_name(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(got.schedule_expression(), Some("cron(0 10 ? * MON#1 *)"));
    assert_eq!(got.schedule_expression_timezone(), Some("Europe/Brussels"));
    let target = got.target().unwrap();
    assert!(target.arn().ends_with(":function:bealert-test-drill"));
    let input: serde_json::Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(input["drill_id"], id.as_str());
    assert_eq!(input["scheduled_time"], "<aws.scheduler.scheduled-time>");

    // Scheduling again replaces it; unscheduling twice is fine.
    drills.schedule(&id, "rate(1 day)").await.unwrap();
    let again = drills
        .client()
        .get_schedule()
        .name(schedule_name(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(again.schedule_expression(), Some("rate(1 day)"));
    drills.unschedule(&id).await.unwrap();
    drills.unschedule(&id).await.unwrap();
    assert!(
        drills
            .client()
            .get_schedule()
            .name(schedule_name(&id))
            .send()
            .await
            .is_err(),
        "gone"
    );
}
