//! The signup's codes leave the AWS home with their own identity, never the
//! alerts': against LocalStack (SES), with the sent-key log in DynamoDB Local.

use crate::common::tables;
use bealert_app::ports::{GatewayError, MessageKind, OutboundMessage, Sent};
use bealert_aws::home::{AwsHome, CodeSending, Settings};
use bealert_aws::testkit;
use bealert_core::{Channel, Language};

fn code(channel: Channel, to: &str, text: &str) -> OutboundMessage {
    OutboundMessage {
        key: format!("verify:{}:{}", rand::random::<u64>(), channel.code()),
        kind: MessageKind::Verification,
        channel,
        to: to.into(),
        language: Language::Nl,
        subject: Some("Uw bealert-code".into()),
        text: text.into(),
        signature: None,
        not_after: i64::MAX,
        provider: None,
        unsubscribe: None,
    }
}

#[tokio::test]
async fn codes_go_out_from_the_signups_own_sender_and_alerts_from_theirs() {
    let (client, tables) = tables("codes").await;
    let ses = testkit::ses();
    for sender in ["alerts@bealert.example", "codes@signup.bealert.example"] {
        ses.verify_email_identity()
            .email_address(sender)
            .send()
            .await
            .unwrap();
    }
    let mut settings = Settings::from_env();
    settings.tables = tables;
    settings.email_from = Some("alerts@bealert.example".into());
    settings.codes = CodeSending {
        email_from: Some("codes@signup.bealert.example".into()),
        ..CodeSending::default()
    };
    let home = AwsHome::with_dynamodb(&testkit::sdk_config(), client, settings);

    let token = format!("{:06}", rand::random_range(0..1_000_000u32));
    let codes = home.code_gateways();
    let r = codes
        .email
        .send(&[code(
            Channel::Email,
            "marie@example.be",
            &format!("Uw code is {token}."),
        )])
        .await;
    assert!(matches!(&r[..], [Ok(Sent::Accepted(_))]), "{r:?}");
    let r = home
        .email()
        .send(&[code(
            Channel::Email,
            "marie@example.be",
            &format!("Alarm {token}."),
        )])
        .await;
    assert!(matches!(&r[..], [Ok(Sent::Accepted(_))]), "{r:?}");

    let sent = testkit::localstack_sent("/_aws/ses").await;
    let source_of = |needle: &str| {
        sent["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m.to_string().contains(needle))
            .map(|m| m["Source"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        source_of(&format!("Uw code is {token}")),
        vec!["codes@signup.bealert.example"],
        "{sent}"
    );
    assert_eq!(
        source_of(&format!("Alarm {token}")),
        vec!["alerts@bealert.example"],
        "{sent}"
    );

    // No number to call codes from: a landline's code is refused for good,
    // naming the variable (never sent through the alerts' voice identity).
    let r = codes
        .voice
        .send(&[code(Channel::Voice, "+3261212345", "Uw code is 1, 2, 3.")])
        .await;
    assert!(
        matches!(&r[..], [Err(GatewayError::Permanent(m))] if m.contains("BEALERT_CODES_VOICE_ORIGINATION")),
        "{r:?}"
    );
}
