//! Conformance of the job queue port.

use bealert_app::ports::JobQueue;
use std::collections::BTreeSet;
use std::time::Duration;

const SHORT: Duration = Duration::from_millis(50);

/// `max_receives`: the redrive limit the queue under test was built with.
pub async fn job_queue(q: &dyn JobQueue, max_receives: u32) {
    let bodies: Vec<String> = (0..25).map(|i| format!("{{\"n\":{i}}}")).collect();
    q.send("conf-a", &bodies).await.unwrap();

    let mut got = Vec::new();
    for _ in 0..10 {
        let batch = q
            .receive("conf-a", 10, Duration::from_secs(30), SHORT)
            .await
            .unwrap();
        assert!(batch.len() <= 10);
        got.extend(batch);
        if got.len() == 25 {
            break;
        }
    }
    let seen: BTreeSet<_> = got.iter().map(|j| j.body.clone()).collect();
    assert_eq!(
        seen.len(),
        25,
        "every message is received once while invisible"
    );
    assert!(got.iter().all(|j| j.receive_count == 1));
    // Every one is being worked on, none waits (SQS: approximate, so a
    // few tries).
    let depth = depth_until(q, "conf-a", |d| d.in_flight == 25).await;
    assert_eq!((depth.ready, depth.dead_letters), (0, 0), "{depth:?}");
    assert!(
        q.receive("conf-a", 10, Duration::from_secs(30), SHORT)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        q.receive("conf-b", 10, Duration::from_secs(30), SHORT)
            .await
            .unwrap()
            .is_empty(),
        "queues are separate"
    );

    for j in &got[1..] {
        q.delete("conf-a", &j.receipt).await.unwrap();
    }
    // Retry makes it visible again, with its receive count kept.
    q.retry_after("conf-a", &got[0].receipt, Duration::ZERO, "try again")
        .await
        .unwrap();
    let back = receive_one(q, "conf-a", Duration::from_secs(1)).await;
    assert_eq!(back.body, got[0].body);
    assert_eq!(back.receive_count, 2);

    // An expired visibility timeout makes it visible again.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let again = receive_one(q, "conf-a", Duration::from_secs(30)).await;
    assert_eq!(again.body, got[0].body);
    assert_eq!(again.receive_count, 3);
    q.delete("conf-a", &again.receipt).await.unwrap();
    assert!(
        q.receive("conf-a", 10, Duration::from_secs(30), SHORT)
            .await
            .unwrap()
            .is_empty()
    );

    // A message that keeps failing ends in the dead-letter queue.
    q.send("conf-poison", &["not json".to_string()])
        .await
        .unwrap();
    for n in 1..=max_receives {
        let j = receive_one(q, "conf-poison", Duration::from_secs(30)).await;
        assert_eq!(j.receive_count, n);
        q.retry_after(
            "conf-poison",
            &j.receipt,
            Duration::ZERO,
            &format!("failure {n}"),
        )
        .await
        .unwrap();
    }
    assert!(
        q.receive(
            "conf-poison",
            10,
            Duration::from_secs(30),
            Duration::from_millis(300)
        )
        .await
        .unwrap()
        .is_empty()
    );
    let dead = q.dead_letters("conf-poison").await.unwrap();
    assert_eq!(dead.len(), 1);
    let depth = depth_until(q, "conf-poison", |d| d.dead_letters == 1).await;
    assert_eq!((depth.ready, depth.in_flight), (0, 0), "{depth:?}");
    assert_eq!(dead[0].body, "not json");
    // A queue that keeps the last error (SQS does not) keeps the right one.
    if let Some(e) = &dead[0].last_error {
        assert_eq!(e, &format!("failure {max_receives}"));
    }

    // A redriven dead letter is back on its queue, its receive count reset.
    assert!(!q.redrive("conf-poison", "no-such-id").await.unwrap());
    assert!(q.redrive("conf-poison", &dead[0].id).await.unwrap());
    assert!(q.dead_letters("conf-poison").await.unwrap().is_empty());
    let back = receive_one(q, "conf-poison", Duration::from_secs(30)).await;
    assert_eq!((back.body.as_str(), back.receive_count), ("not json", 1));
    q.delete("conf-poison", &back.receipt).await.unwrap();

    // A job no retry can mend moves to the dead-letter queue at once, with
    // its reason, using up no more receives.
    q.send("conf-poison", &["unreadable".to_string()])
        .await
        .unwrap();
    let j = receive_one(q, "conf-poison", Duration::from_secs(30)).await;
    assert_eq!(j.receive_count, 1);
    q.dead_letter(
        "conf-poison",
        &j.receipt,
        &j.body,
        "unreadable job: expected value",
    )
    .await
    .unwrap();
    assert!(
        q.receive("conf-poison", 10, Duration::from_secs(30), SHORT)
            .await
            .unwrap()
            .is_empty()
    );
    let dead = q.dead_letters("conf-poison").await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].body, "unreadable");
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("unreadable job: expected value"),
        "the reason travels with it"
    );
    assert!(q.redrive("conf-poison", &dead[0].id).await.unwrap());
    let back = receive_one(q, "conf-poison", Duration::from_secs(30)).await;
    q.delete("conf-poison", &back.receipt).await.unwrap();

    // Planned waits do not count as receives: postponed twice the limit,
    // the message is still there, never dead-lettered.
    q.send("conf-wait", &["waiting".to_string()]).await.unwrap();
    for _ in 0..max_receives * 2 {
        let j = receive_one(q, "conf-wait", Duration::from_secs(30)).await;
        assert_eq!(j.body, "waiting");
        q.postpone("conf-wait", &j.receipt, &j.body, Duration::ZERO)
            .await
            .unwrap();
    }
    let j = receive_one(q, "conf-wait", Duration::from_secs(30)).await;
    assert_eq!((j.body.as_str(), j.receive_count), ("waiting", 1));
    q.delete("conf-wait", &j.receipt).await.unwrap();
    assert!(q.dead_letters("conf-wait").await.unwrap().is_empty());
}

/// The queue's depth once `ok` holds (or the last one read, after 5 s).
async fn depth_until(
    q: &dyn JobQueue,
    queue: &str,
    ok: impl Fn(&bealert_app::ports::QueueDepth) -> bool,
) -> bealert_app::ports::QueueDepth {
    let mut depth = q.depth(queue).await.unwrap();
    for _ in 0..50 {
        if ok(&depth) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        depth = q.depth(queue).await.unwrap();
    }
    assert!(ok(&depth), "{queue}: {depth:?}");
    depth
}

async fn receive_one(
    q: &dyn JobQueue,
    queue: &str,
    visibility: Duration,
) -> bealert_app::ports::ReceivedJob {
    // SQS keeps time in whole seconds: poll gently for up to 5 s.
    for _ in 0..50 {
        if let Some(j) = q.receive(queue, 1, visibility, SHORT).await.unwrap().pop() {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no message became visible on {queue}");
}
