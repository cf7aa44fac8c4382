//! The producer actor against the in-process Kafka cluster: batches land
//! whole and in order, and a batch the broker refuses for good does not
//! block the ones behind it.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use actix::prelude::*;
use atlas_transports::actors::producer::{EmitBatch, Flush, Producer, ProducerCounters};
use atlas_transports::clock::SystemClock;
use atlas_transports::wire::{Batch, OutgoingRecord};
use common::kafka::*;
use common::*;

fn record(topic: &str, key: &str, size: usize) -> OutgoingRecord {
    OutgoingRecord {
        topic: topic.to_string(),
        key: Some(key.as_bytes().to_vec()),
        payload: format!(
            "{{\"characterId\":{},\"padding\":\"{}\"}}",
            key.len(),
            "x".repeat(size)
        )
        .into_bytes(),
        headers: vec![("TENANT_ID".into(), TENANT_A.as_bytes().to_vec())],
    }
}

fn batch(cause: &str, records: Vec<OutgoingRecord>) -> EmitBatch {
    EmitBatch::new(Batch {
        cause: cause.to_string(),
        scheduled_at: None,
        records,
    })
}

/// Queues `batches` on a new producer at once, flushes, and returns its
/// counters.
fn write_batches(bootstrap: &str, batches: Vec<EmitBatch>) -> ProducerCounters {
    let bootstrap = bootstrap.to_string();
    actix_rt::System::new().block_on(async move {
        let producer = Producer::new(
            bootstrap,
            format!("test-{}", uuid::Uuid::new_v4()),
            Arc::new(SystemClock),
            Arc::new(AtomicBool::new(false)),
            Arc::new(Default::default()),
        )
        .start();

        for batch in batches {
            producer.do_send(batch);
        }
        let counters = producer.send(Flush).await.unwrap();
        System::current().stop();
        counters
    })
}

/// Reads the keys of the first `count` records, then checks nothing follows.
fn read_keys(reader: &Reader, count: usize) -> Vec<String> {
    let mut keys = Vec::new();
    while keys.len() < count {
        for record in reader.read_until(|_| true) {
            keys.push(String::from_utf8(record.key.unwrap()).unwrap());
        }
    }
    let rest = reader.drain();
    assert!(rest.is_empty(), "{rest:#?}");
    keys
}

#[test]
fn refused_batch_does_not_block_later_batches() {
    let _ = env_logger::builder().is_test(true).try_init();
    let settings = default_settings();
    let cluster = TestCluster::start(&settings);
    let topic = &settings.topics.character_command;

    let counters = write_batches(
        &cluster.bootstrap,
        vec![
            batch(
                "first",
                vec![record(topic, "a", 10), record(topic, "b", 10)],
            ),
            // Past librdkafka's default 1 MB limit per record: refused for good.
            batch(
                "too large",
                vec![record(topic, "c", 10), record(topic, "d", 2_000_000)],
            ),
            batch("last", vec![record(topic, "e", 10)]),
        ],
    );

    assert_eq!(counters.batches, 2);
    assert_eq!(counters.records, 3);
    assert_eq!(counters.undelivered, 1);

    let keys = read_keys(&cluster.reader(topic), 3);
    assert_eq!(
        keys,
        vec!["a", "b", "e"],
        "the refused batch landed not even in part"
    );
}

#[test]
fn queued_batches_share_transactions() {
    let settings = default_settings();
    let cluster = TestCluster::start(&settings);
    let topic = &settings.topics.character_command;

    // A burst, as when many routes share a trip instant.
    let burst = (0..200)
        .map(|index| {
            batch(
                &format!("burst {index}"),
                vec![record(topic, &format!("k{index}"), 10)],
            )
        })
        .collect();
    let counters = write_batches(&cluster.bootstrap, burst);

    assert_eq!(counters.batches, 200);
    assert_eq!(counters.records, 200);
    assert!(
        counters.transactions < 20,
        "{} transactions for 200 batches",
        counters.transactions
    );

    let keys = read_keys(&cluster.reader(topic), 200);
    let expected: Vec<String> = (0..200).map(|index| format!("k{index}")).collect();
    assert_eq!(keys, expected, "every batch once, in order");
}
