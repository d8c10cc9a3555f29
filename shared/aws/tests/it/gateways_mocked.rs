//! Gateway adapters against mocked SDK clients (aws-smithy-mocks): what each
//! sends, and which failures are retried. Voice has no emulator at all.

use crate::common::alert_message as message;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use bealert_app::ports::GatewayError;
use bealert_aws::gateways::{EumSms, SesEmail, SnsSms, Transmit, VoiceCalls, voice_for};
use bealert_core::{Channel, Language};

#[tokio::test]
async fn sms_is_published_to_the_number_as_transactional_with_the_sender_id() {
    use aws_sdk_sns::operation::publish::PublishOutput;
    let rule = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| {
            let attrs = r.message_attributes().unwrap();
            r.phone_number() == Some("+32470123456")
                && r.message() == Some("Sluit ramen en deuren")
                && attrs["AWS.SNS.SMS.SMSType"].string_value() == Some("Transactional")
                && attrs["AWS.SNS.SMS.SenderID"].string_value() == Some("BEALERT")
        })
        .then_output(|| PublishOutput::builder().message_id("m-1").build());
    let client = mock_client!(aws_sdk_sns, [&rule]);
    let sms = SnsSms {
        client,
        sender_id: Some("BEALERT".into()),
    };
    let id = sms
        .transmit(&message(Channel::Sms, "+32470123456", Language::Nl))
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(id.as_deref(), Some("m-1"), "SNS's message id is kept");
}

#[tokio::test]
async fn throttled_sms_is_retryable_and_a_bad_number_is_not() {
    use aws_sdk_sns::operation::publish::PublishError;
    use aws_sdk_sns::types::error::InvalidParameterException;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    // SNS throttles with an unmodelled `Throttling` code in its XML errors.
    let throttled = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| r.phone_number() == Some("+32470000001"))
        .then_http_response(|| {
            Response::new(
                StatusCode::try_from(400).unwrap(),
                SdkBody::from(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
                     <Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>",
                ),
            )
        });
    let invalid = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| r.phone_number() == Some("+32470000002"))
        .then_error(|| {
            PublishError::InvalidParameterException(
                InvalidParameterException::builder()
                    .message("bad number")
                    .build(),
            )
        });
    let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&throttled, &invalid]);
    let sms = SnsSms {
        client,
        sender_id: None,
    };
    let e = sms
        .transmit(&message(Channel::Sms, "+32470000001", Language::Fr))
        .await
        .unwrap_err();
    assert!(
        matches!(e, GatewayError::Throttled(ref m) if m.contains("Throttling")),
        "{e:?}"
    );
    let e = sms
        .transmit(&message(Channel::Sms, "+32470000002", Language::Fr))
        .await
        .unwrap_err();
    assert!(
        matches!(e, GatewayError::Permanent(ref m) if m.contains("bad number")),
        "{e:?}"
    );
}

#[tokio::test]
async fn email_goes_out_through_ses_with_subject_and_text() {
    use aws_sdk_ses::operation::send_raw_email::{SendRawEmailError, SendRawEmailOutput};
    use aws_sdk_ses::types::error::MessageRejected;
    let raw = |r: &aws_sdk_ses::operation::send_raw_email::SendRawEmailInput| {
        String::from_utf8(r.raw_message().unwrap().data().as_ref().to_vec()).unwrap()
    };
    let ok = mock!(aws_sdk_ses::Client::send_raw_email)
        .match_requests(move |r| {
            let m = raw(r);
            r.source() == Some("alerts@bealert.example")
                && r.destinations() == ["a@b.be"]
                && m.contains("Subject: bealert: Chemical leak")
                && m.contains("Sluit ramen en deuren")
                && m.contains("Content-Type: text/html")
                && r.configuration_set_name() == Some("bealert-receipts")
        })
        .then_output(|| {
            SendRawEmailOutput::builder()
                .message_id("e-1")
                .build()
                .unwrap()
        });
    let rejected = mock!(aws_sdk_ses::Client::send_raw_email)
        .match_requests(|r| r.destinations() == ["x@y.be"])
        .then_error(|| {
            SendRawEmailError::MessageRejected(
                MessageRejected::builder()
                    .message("address blacklisted")
                    .build(),
            )
        });
    let client = mock_client!(aws_sdk_ses, RuleMode::MatchAny, [&ok, &rejected]);
    let email = SesEmail {
        client,
        from: "alerts@bealert.example".into(),
        configuration_set: Some("bealert-receipts".into()),
    };
    let id = email
        .transmit(&message(Channel::Email, "a@b.be", Language::Nl))
        .await
        .unwrap();
    assert_eq!(ok.num_calls(), 1);
    assert_eq!(id.as_deref(), Some("e-1"), "SES's message id is kept");
    let e = email
        .transmit(&message(Channel::Email, "x@y.be", Language::Nl))
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::Permanent(_)), "{e:?}");
}

#[tokio::test]
async fn voice_calls_read_the_text_in_a_voice_of_its_language() {
    use aws_sdk_pinpointsmsvoicev2::operation::send_voice_message::{
        SendVoiceMessageError, SendVoiceMessageOutput,
    };
    use aws_sdk_pinpointsmsvoicev2::types::VoiceMessageBodyTextType;
    use aws_sdk_pinpointsmsvoicev2::types::error::ThrottlingException;
    for (lang, to) in [
        (Language::Nl, "+32470000010"),
        (Language::Fr, "+32470000011"),
        (Language::De, "+32470000012"),
        (Language::En, "+32470000013"),
    ] {
        let rule = mock!(aws_sdk_pinpointsmsvoicev2::Client::send_voice_message)
            .match_requests(move |r| {
                r.destination_phone_number() == Some(to)
                    && r.origination_identity() == Some("pool-bealert")
                    && r.message_body_text_type() == Some(&VoiceMessageBodyTextType::Text)
                    && r.voice_id() == Some(&voice_for(lang))
                    && r.configuration_set_name() == Some("bealert-receipts")
            })
            .then_output(|| SendVoiceMessageOutput::builder().message_id("v-1").build());
        let client = mock_client!(aws_sdk_pinpointsmsvoicev2, [&rule]);
        let voice = VoiceCalls {
            client,
            origination: "pool-bealert".into(),
            configuration_set: Some("bealert-receipts".into()),
        };
        voice
            .transmit(&message(Channel::Voice, to, lang))
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1, "{lang}");
    }
    let throttled =
        mock!(aws_sdk_pinpointsmsvoicev2::Client::send_voice_message).then_error(|| {
            SendVoiceMessageError::ThrottlingException(
                ThrottlingException::builder().message("rate").build(),
            )
        });
    let client = mock_client!(aws_sdk_pinpointsmsvoicev2, [&throttled]);
    let voice = VoiceCalls {
        client,
        origination: "pool-bealert".into(),
        configuration_set: None,
    };
    let e = voice
        .transmit(&message(Channel::Voice, "+32470000010", Language::Nl))
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::Throttled(_)), "{e:?}");
}

#[tokio::test]
async fn signup_codes_go_through_end_user_messaging_from_their_own_pool_at_a_capped_price() {
    use aws_sdk_pinpointsmsvoicev2::operation::send_text_message::{
        SendTextMessageError, SendTextMessageOutput,
    };
    use aws_sdk_pinpointsmsvoicev2::types::MessageType;
    use aws_sdk_pinpointsmsvoicev2::types::error::ValidationException;
    let rule = mock!(aws_sdk_pinpointsmsvoicev2::Client::send_text_message)
        .match_requests(|r| {
            r.destination_phone_number() == Some("+32470123456")
                && r.origination_identity() == Some("pool-codes")
                && r.configuration_set_name() == Some("bealert-prod-codes")
                && r.max_price() == Some("0.15")
                && r.message_type() == Some(&MessageType::Transactional)
                && r.message_body() == Some("Sluit ramen en deuren")
        })
        .then_output(|| SendTextMessageOutput::builder().message_id("t-1").build());
    let refused = mock!(aws_sdk_pinpointsmsvoicev2::Client::send_text_message)
        .match_requests(|r| r.destination_phone_number() == Some("+2348031234567"))
        .then_error(|| {
            SendTextMessageError::ValidationException(
                ValidationException::builder()
                    .message("price exceeds MaxPrice")
                    .build(),
            )
        });
    let client = mock_client!(
        aws_sdk_pinpointsmsvoicev2,
        RuleMode::MatchAny,
        [&rule, &refused]
    );
    let sms = EumSms {
        client,
        origination: "pool-codes".into(),
        configuration_set: Some("bealert-prod-codes".into()),
        max_price: Some("0.15".into()),
    };
    let id = sms
        .transmit(&message(Channel::Sms, "+32470123456", Language::Nl))
        .await
        .unwrap();
    assert_eq!(id.as_deref(), Some("t-1"));
    assert_eq!(rule.num_calls(), 1);
    let e = sms
        .transmit(&message(Channel::Sms, "+2348031234567", Language::Nl))
        .await
        .unwrap_err();
    assert!(
        matches!(e, GatewayError::Permanent(_)),
        "a refused price is not retried: {e:?}"
    );
}
