//! The producer actor against the in-process Kafka cluster: batches land
//! whole and in order, and a batch the broker refuses for good does not
//! block the ones behind it.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use actix::prelude::*;
use atlas_transports::actors::producer::{EmitBatch, Flush, Producer};
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

#[test]
fn refused_batch_does_not_block_later_batches() {
    let _ = env_logger::builder().is_test(true).try_init();
    let settings = default_settings();
    let cluster = TestCluster::start(&settings);
    let topic = settings.topics.character_command.clone();
    let bootstrap = cluster.bootstrap.clone();

    let counters = actix_rt::System::new().block_on(async move {
        let producer = Producer::new(
            bootstrap.clone(),
            format!("test-{}", uuid::Uuid::new_v4()),
            Arc::new(SystemClock),
            Arc::new(AtomicBool::new(false)),
            Arc::new(Default::default()),
        )
        .start();

        producer.do_send(batch(
            "first",
            vec![record(&topic, "a", 10), record(&topic, "b", 10)],
        ));
        // Past librdkafka's default 1 MB limit per record: refused for good.
        producer.do_send(batch(
            "too large",
            vec![record(&topic, "c", 10), record(&topic, "d", 2_000_000)],
        ));
        producer.do_send(batch("last", vec![record(&topic, "e", 10)]));
        let counters = producer.send(Flush).await.unwrap();
        System::current().stop();
        counters
    });

    assert_eq!(counters.batches, 2);
    assert_eq!(counters.records, 3);
    assert_eq!(counters.undelivered, 1);

    let reader = cluster.reader(&settings.topics.character_command);
    let mut keys = Vec::new();
    while keys.len() < 3 {
        for record in reader.read_until(|_| true) {
            keys.push(String::from_utf8(record.key.unwrap()).unwrap());
        }
    }
    let rest = reader.drain();
    assert!(rest.is_empty(), "{rest:#?}");
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
    let topic = settings.topics.character_command.clone();
    let bootstrap = cluster.bootstrap.clone();

    let counters = actix_rt::System::new().block_on(async move {
        let producer = Producer::new(
            bootstrap,
            format!("test-{}", uuid::Uuid::new_v4()),
            Arc::new(SystemClock),
            Arc::new(AtomicBool::new(false)),
            Arc::new(Default::default()),
        )
        .start();

        // A burst, as when many routes share a trip instant.
        for index in 0..200 {
            producer.do_send(batch(
                &format!("burst {index}"),
                vec![record(&topic, &format!("k{index}"), 10)],
            ));
        }
        let counters = producer.send(Flush).await.unwrap();
        System::current().stop();
        counters
    });

    assert_eq!(counters.batches, 200);
    assert_eq!(counters.records, 200);
    assert!(
        counters.transactions < 20,
        "{} transactions for 200 batches",
        counters.transactions
    );

    let reader = cluster.reader(&settings.topics.character_command);
    let mut keys = Vec::new();
    while keys.len() < 200 {
        for record in reader.read_until(|_| true) {
            keys.push(String::from_utf8(record.key.unwrap()).unwrap());
        }
    }
    let expected: Vec<String> = (0..200).map(|index| format!("k{index}")).collect();
    assert_eq!(keys, expected, "every batch once, in order");
}
