//! The send-sms handler on its sample event (events/send-sms.json), in-process on the embedded home.

use bealert_core::{Channel, Language};
use bealert_embedded::testing::{TestHome, check_refuses_to_start_without_configuration};

const EVENT: &str = include_str!("../../../events/send-sms.json");

#[tokio::test]
async fn the_sample_batch_is_sent_once_a_redelivery_sends_nothing_and_a_broken_record_fails_alone()
{
    TestHome::check_sender(
        send_sms::handler,
        EVENT,
        Channel::Sms,
        [
            ("1a2b3c4d5e6f7a8b", "+32470123456", Language::Nl),
            ("2b3c4d5e6f7a8b9c", "+32471234567", Language::Fr),
        ],
    )
    .await;
}

#[test]
fn without_its_configuration_the_function_refuses_to_start_naming_what_is_missing() {
    check_refuses_to_start_without_configuration(
        env!("CARGO_BIN_EXE_send-sms"),
        send_sms::REQUIRED_ENV,
        "BEALERT_SMS_QUEUE_URL",
    );
}
