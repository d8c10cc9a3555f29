//! The signup on DynamoDB Local: a citizen verified, reached by an alert's
//! planned delivery, then deleted with a self-service link - and nothing of
//! their number left in any table (every item of every table is searched).

use crate::common::tables;
use async_trait::async_trait;
use bealert_app::App;
use bealert_app::ports::{
    AddressQuery, Gateway, GatewayError, Gateways, GeocodeError, Geocoder, OutboundMessage, Place,
    Ports, RecipientPlan, Sent, SignupPorts,
};
use bealert_app::usecases::AppConfig;
use bealert_app::usecases::self_service::ManageLink;
use bealert_app::usecases::signup::{SignupConfig, SignupRequest};
use bealert_aws::{DynamoStore, SqsQueue, testkit};
use bealert_core::delivery::PlannedDelivery;
use bealert_core::subscriber::AddressInput;
use bealert_core::{AlertId, Channel, Language};
use std::sync::{Arc, Mutex};

/// Keeps what would be sent (codes, links), sends nothing.
#[derive(Default)]
struct Recording(Mutex<Vec<OutboundMessage>>);

#[async_trait]
impl Gateway for Recording {
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
        self.0.lock().unwrap().extend(messages.iter().cloned());
        vec![Ok(Sent::accepted()); messages.len()]
    }
}

/// Geocoding is not part of this test.
struct NoGeocoder;

#[async_trait]
impl Geocoder for NoGeocoder {
    async fn geocode(&self, _: &AddressQuery) -> Result<Vec<Place>, GeocodeError> {
        Ok(Vec::new())
    }
}

/// Every attribute value of every item of `table`, as text.
async fn dump(client: &aws_sdk_dynamodb::Client, table: &str) -> String {
    let mut out = String::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        for item in page.items() {
            out.push_str(&format!("{item:?}\n"));
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return out,
        }
    }
}

#[tokio::test]
async fn a_deleted_citizen_leaves_nothing_of_their_number_in_dynamodb() {
    let (client, tables) = tables("signup").await;
    let store = Arc::new(DynamoStore::new(client.clone(), tables.clone()));
    let sms = Arc::new(Recording::default());
    let ports = Ports {
        subscribers: store.clone(),
        alerts: store.clone(),
        deliveries: store.clone(),
        operators: store.clone(),
        geography: store.clone(),
        documents: store.clone(),
        idempotency: store.clone(),
        queue: Arc::new(SqsQueue::new(testkit::sqs(), "unused-")),
        gateways: Gateways {
            sms: sms.clone(),
            voice: sms.clone(),
            email: sms.clone(),
        },
        targets: store.clone(),
    };
    let signup = SignupPorts {
        registrations: store.clone(),
        counters: store.clone(),
        geocoder: Arc::new(NoGeocoder),
        gateways: Gateways {
            sms: sms.clone(),
            voice: sms.clone(),
            email: sms.clone(),
        },
    };
    let app = App::new(ports, AppConfig::default())
        .with_signup(signup, SignupConfig::with_secret(vec![3; 32]));
    let phone = "+32470765432";
    let citizens = app.signup().expect("the signup is set up");
    let challenge = citizens.signup_challenge().unwrap();
    let nonce = bealert_app::usecases::signup::solve_pow(&challenge.challenge, challenge.bits);

    let view = citizens
        .signup_with(
            SignupRequest {
                language: "fr".into(),
                phone: Some(phone.into()),
                email: None,
                channels: vec!["sms".into()],
                addresses: vec![AddressInput {
                    label: Some("home".into()),
                    lat: 50.0035,
                    lon: 5.7184,
                }],
                consent: true,
                proof_of_work: Some(bealert_app::usecases::signup::ProofOfWork {
                    challenge: challenge.challenge,
                    nonce,
                }),
                invitation: None,
            },
            None,
            bealert_app::usecases::signup::HumanProof::ProofOfWork,
        )
        .await
        .unwrap();
    let code = {
        let sent = sms.0.lock().unwrap();
        sent[0]
            .text
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .unwrap()
            .to_string()
    };
    let active = citizens
        .verify_contact(&view.id, "phone", &code)
        .await
        .unwrap();
    assert_eq!(format!("{:?}", active.state), "Active");
    assert!(
        dump(&client, &tables.subscribers).await.contains(phone),
        "the search finds the number while kept"
    );

    // An alert planned a delivery to them (as resolution does).
    let registration = citizens.registration_contacts(&view.id).await.unwrap();
    assert_eq!(registration.1, vec![Channel::Sms]);
    let subscriber = bealert_core::SubscriberId::from_external_id(&format!("signup:{}", view.id));
    let alert = AlertId::new();
    store_plan(&store, alert, subscriber, phone).await;
    assert!(dump(&client, &tables.deliveries).await.contains(phone));

    // The self-service link, then deletion.
    citizens.request_manage_link(phone, None).await.unwrap();
    let text = sms.0.lock().unwrap().last().unwrap().text.clone();
    let url = &text[text.find("/manage/").unwrap()..];
    let (path, query) = url.split_once('?').unwrap();
    let mut link = ManageLink {
        id: path.trim_start_matches("/manage/").into(),
        until: 0,
        sig: String::new(),
    };
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("until", v)) => link.until = v.parse().unwrap(),
            Some(("sig", v)) => link.sig = v.into(),
            _ => {}
        }
    }
    let report = citizens.manage_delete(&link).await.unwrap();
    assert!(report.registration && report.subscriber, "{report:?}");
    assert_eq!((report.addresses, report.deliveries), (1, 1), "{report:?}");

    for table in [
        &tables.subscribers,
        &tables.alerts,
        &tables.deliveries,
        &tables.operators,
        &tables.registrations,
    ] {
        let text = dump(&client, table).await;
        assert!(
            !text.contains(phone) && !text.contains(&phone[1..]),
            "{table} still holds the number:\n{text}"
        );
    }
    assert_eq!(app.ports.subscribers.subscriber_count().await.unwrap(), 0);
}

async fn store_plan(
    store: &DynamoStore,
    alert: AlertId,
    subscriber: bealert_core::SubscriberId,
    to: &str,
) {
    use bealert_app::ports::DeliveryStore;
    store
        .plan_deliveries(
            alert,
            0,
            &[RecipientPlan {
                subscriber_id: subscriber,
                external_id: Some("signup".into()),
                deliveries: vec![PlannedDelivery {
                    subscriber_id: subscriber,
                    channel: Channel::Sms,
                    to: to.into(),
                    language: Language::Fr,
                }],
            }],
        )
        .await
        .unwrap();
}
