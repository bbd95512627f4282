use lapin::types::FieldTable;
use orfeas_vocab::{Engine, JobMessage, MessageError, TextureMode};

use super::*;
use crate::broker::fake::{Event, FakeBroker};

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(100),
        max: Duration::from_millis(1_000),
        outage_budget: Duration::from_secs(60),
        overflow_queue: None,
    }
}

fn held(counted: i32, outage_since: Option<DateTime<Utc>>) -> Held {
    Held {
        id: JobId::new(),
        attempt: counted + 2,
        counted,
        outage_since,
    }
}

fn header<'a>(props: &'a lapin::BasicProperties, name: &str) -> Option<&'a AMQPValue> {
    props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().iter().find(|(k, _)| k.as_str() == name))
        .map(|(_, v)| v)
}

#[test]
fn permanent_malformed_and_canceled_failures() {
    let p = policy();
    let now = Utc::now();
    let d = plan(
        &Failure::permanent(ErrorCode::NoForeground, "plain"),
        None,
        0,
        &p,
        now,
    );
    assert_eq!(
        d,
        Disposition::DeadLetter {
            code: ErrorCode::NoForeground,
            message: "plain".into()
        }
    );
    let d = plan(
        &Failure::Malformed(MessageError::Malformed("x".into())),
        None,
        0,
        &p,
        now,
    );
    assert!(matches!(
        d,
        Disposition::DeadLetter {
            code: ErrorCode::MalformedMessage,
            ..
        }
    ));
    assert_eq!(
        plan(&Failure::Canceled, Some(&held(1, None)), 2, &p, now),
        Disposition::Ack
    );
}

#[test]
fn transient_failures_retry_until_the_counted_attempts_run_out() {
    let p = policy();
    let now = Utc::now();
    let f = Failure::from_code(ErrorCode::EngineFailure, "crashed");
    for counted in 1..3 {
        // The message's retry header only sets the backoff; the attempts are PostgreSQL's.
        match plan(&f, Some(&held(counted, None)), 7, &p, now) {
            Disposition::Retry {
                next,
                delay,
                code,
                outage,
                ..
            } => {
                assert_eq!(next, 8);
                assert_eq!(code, ErrorCode::EngineFailure);
                assert!(!outage);
                assert!(delay <= Duration::from_millis(1_000));
            }
            other => panic!("attempt {counted}: {other:?}"),
        }
    }
    match plan(&f, Some(&held(3, None)), 0, &p, now) {
        Disposition::DeadLetter { code, message } => {
            assert_eq!(code, ErrorCode::RetriesExhausted);
            assert!(message.contains("3 attempts") && message.contains("engine_failure"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn outages_wait_without_using_attempts_until_the_budget_is_spent() {
    let p = policy();
    let now = Utc::now();
    let f = Failure::from_code(ErrorCode::StorageUnavailable, "down");
    // Attempts used up, but an outage does not count: it waits.
    let recent = Some(now - chrono::Duration::seconds(30));
    match plan(&f, Some(&held(3, recent)), 4, &p, now) {
        Disposition::Retry { outage, code, .. } => {
            assert!(outage);
            assert_eq!(code, ErrorCode::StorageUnavailable);
        }
        other => panic!("{other:?}"),
    }
    // Before any attempt started (the database was down at the start): wait too.
    assert!(matches!(
        plan(&f, None, 50, &p, now),
        Disposition::Retry { outage: true, .. }
    ));
    // Down for longer than the budget: the job fails with the dependency's code.
    let long_ago = Some(now - chrono::Duration::seconds(61));
    match plan(&f, Some(&held(1, long_ago)), 4, &p, now) {
        Disposition::DeadLetter { code, message } => {
            assert_eq!(code, ErrorCode::StorageUnavailable);
            assert!(message.contains("outage_budget_s"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn retries_and_dead_letters_keep_the_headers_and_add_the_reason() {
    let b = FakeBroker::default();
    let topology = Topology::for_engine("t", Engine::Inflate)
        .with_retry_levels(Duration::from_millis(100), Duration::from_secs(1));
    let body = JobMessage {
        job_id: JobId::new(),
        priority: 4,
        engine: Engine::Inflate,
        octree_resolution: 128,
        num_chunks: 8000,
        steps: None,
        texture: TextureMode::default(),
    }
    .encode();
    let mut m = b.message(body.clone());
    let mut headers = FieldTable::default();
    headers.insert(
        "traceparent".into(),
        AMQPValue::LongString("00-abc-def-01".into()),
    );
    headers.insert(RETRIES_HEADER.into(), AMQPValue::LongUInt(1));
    m.properties = orfeas_shared::queue::properties(4, headers);
    assert_eq!(m.retries(), 1);

    let retry = Disposition::Retry {
        next: 2,
        delay: Duration::from_millis(150),
        code: ErrorCode::EngineFailure,
        message: "boom".into(),
        outage: false,
    };
    send(&b, &topology, &m, &retry).await.expect("retry");
    let dead = plan(
        &Failure::permanent(ErrorCode::CorruptImage, "bad bytes"),
        None,
        0,
        &policy(),
        Utc::now(),
    );
    send(&b, &topology, &m, &dead).await.expect("dead letter");
    send(&b, &topology, &m, &Disposition::Ack)
        .await
        .expect("nothing");

    let events = b.events();
    assert_eq!(events.len(), 2, "{events:?}");
    let Event::Publish {
        queue,
        body: sent,
        properties,
    } = &events[0]
    else {
        panic!("{events:?}");
    };
    assert_eq!(
        queue, "t.retry.200ms",
        "the shortest retry queue at least as long"
    );
    assert_eq!(sent, &body);
    assert_eq!(
        header(properties, RETRIES_HEADER),
        Some(&AMQPValue::LongUInt(2))
    );
    assert_eq!(
        header(properties, ERROR_CODE_HEADER),
        Some(&AMQPValue::LongString("engine_failure".into()))
    );
    assert!(
        header(properties, "traceparent").is_some(),
        "trace context kept"
    );
    assert_eq!(properties.priority(), &Some(4));
    assert!(
        properties.expiration().is_none(),
        "the queue's TTL is the delay, not the message's"
    );

    let Event::Publish {
        queue, properties, ..
    } = &events[1]
    else {
        panic!("{events:?}");
    };
    assert_eq!(queue, "t.dlq");
    assert_eq!(
        header(properties, ERROR_CODE_HEADER),
        Some(&AMQPValue::LongString("corrupt_image".into()))
    );
    assert_eq!(
        header(properties, ERROR_MESSAGE_HEADER),
        Some(&AMQPValue::LongString("bad bytes".into()))
    );
    assert!(header(properties, "traceparent").is_some());
}
