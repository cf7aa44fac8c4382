//! Kafka consumers: the group consumer of one topic, and the one-off reader
//! that rebuilds map presence from the map-status topic at start-up.
//!
//! Offsets rule: a group consumer never commits on its own
//! (`enable.auto.commit=false`). A record's offset is committed by the
//! producer, after the batch the record caused is written (inside the same
//! transaction where the broker supports it), so no record is acknowledged
//! before its effect is durable.

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use rdkafka::bindings as rdsys;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::client_errors::ClientErrorLog;
use crate::records::{decode_header_name, BadRecord};
use crate::timetable::Instant;

/// Logs partition assignments and tracks whether the consumer has
/// partitions now, for the readiness probe.
pub struct GroupContext {
    topic: String,
    /// True while the latest assignment has at least one partition.
    /// Cleared on revoke, and by an empty assignment.
    pub assigned: Arc<AtomicBool>,
    errors: ClientErrorLog,
}

impl ClientContext for GroupContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.log("consumer", &error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) if partitions.count() == 0 => {
                self.assigned.store(false, Ordering::SeqCst);
                // Each consumer is the group's only reader of its topic, so
                // an empty share means another member has the partitions:
                // a second instance, or a dead one the broker has not
                // expired (tansu 0.6 was seen never to rebalance then).
                log::warn!(
                    "no partitions assigned, records of this topic are not read; stop other instances of this consumer group topic={}",
                    self.topic
                );
            }
            Rebalance::Assign(partitions) => {
                self.assigned.store(true, Ordering::SeqCst);
                log::info!("partitions assigned {}", describe(partitions));
            }
            Rebalance::Revoke(partitions) => {
                self.assigned.store(false, Ordering::SeqCst);
                log::info!("partitions revoked {}", describe(partitions))
            }
            Rebalance::Error(error) => log::warn!(
                "consumer group rebalance failed topic={} error={error}",
                self.topic
            ),
        }
    }
}

fn describe(partitions: &TopicPartitionList) -> String {
    let mut by_topic: HashMap<String, Vec<i32>> = HashMap::new();
    for element in partitions.elements() {
        by_topic
            .entry(element.topic().to_string())
            .or_default()
            .push(element.partition());
    }
    let mut parts: Vec<String> = by_topic
        .into_iter()
        .map(|(topic, partitions)| format!("topic={topic} partitions={partitions:?}"))
        .collect();
    parts.sort();
    parts.join(" ")
}

pub type GroupConsumer = StreamConsumer<GroupContext>;

/// Creates a group member subscribed to `topic` that reads only committed
/// records.
pub fn subscribe(
    bootstrap_servers: &str,
    group_id: &str,
    topic: &str,
) -> Result<GroupConsumer, KafkaError> {
    let mut config = ClientConfig::new();
    // librdkafka's own debug contexts (e.g. `cgrp,fetch`), for diagnosis.
    if let Ok(contexts) = std::env::var("KAFKA_DEBUG") {
        config.set("debug", contexts);
    }

    let consumer: GroupConsumer = config
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A new group starts at the end: a LOGOUT from before the first
        // deployment is history, not a command. Presence comes from the
        // start-up rebuild instead.
        .set("auto.offset.reset", "latest")
        .set("isolation.level", "read_committed")
        // How long the broker keeps a fetch that finds nothing open. A
        // broker responds early when a record arrives, so this costs no latency on
        // Kafka, and an idle service sends 10 fetches a second per topic
        // instead of 100. (librdkafka's mock cluster holds the fetch for
        // the whole time, so a lone record there waits up to 100 ms.)
        .set("fetch.wait.max.ms", "100")
        // A member that vanished without leaving (kill -9, or a broker
        // that ignores LeaveGroup) keeps its partitions this long. 10 s
        // instead of Kafka's 45 s default; 6 s is the broker's usual floor.
        .set("session.timeout.ms", "10000")
        // Keeps each fetch response short: a slow broker (tansu 0.6 on
        // SQLite) takes over 10 s to build a 1 MiB response and so stalls
        // the group's heartbeats. Game events are a few hundred bytes, so
        // 64 KiB still brings hundreds per fetch.
        .set("max.partition.fetch.bytes", "65536")
        .create_with_context(GroupContext {
            topic: topic.to_string(),
            assigned: Arc::default(),
            errors: ClientErrorLog::default(),
        })?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// Whether the record at `offset` was written at or after `since`. Checks a
/// time lookup: the record before the offset it returned must be older.
/// librdkafka's mock cluster, for one, returns the end of the
/// partition whatever the time. `false` when no record is at `offset` (a
/// transaction marker) or it cannot be read in time.
fn newer_than(
    reader: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
    since: Instant,
) -> Result<bool, KafkaError> {
    let mut probe = TopicPartitionList::new();
    probe.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    reader.assign(&probe)?;

    let deadline = WallInstant::now() + Duration::from_secs(5);
    while WallInstant::now() < deadline {
        let Some(result) = reader.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = result?;
        if message.offset() != offset {
            return Ok(false);
        }
        return Ok(message
            .timestamp()
            .to_millis()
            .is_some_and(|written| written >= since));
    }
    Ok(false)
}

/// One record read back from history.
#[derive(Clone, Debug)]
pub struct HistoryRecord {
    pub partition: i32,
    pub offset: i64,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub payload: Option<Vec<u8>>,
}

/// A consumed record's headers in order. A name that is not UTF-8 is kept
/// with its invalid bytes replaced, and makes the record malformed.
pub struct CopiedHeaders {
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub invalid_name: Option<BadRecord>,
}

/// Copies a record's headers through librdkafka, because rdkafka 0.39's
/// `Headers::get` panics on a header name that is not UTF-8.
pub fn copy_headers(message: &BorrowedMessage<'_>) -> CopiedHeaders {
    let mut copied = CopiedHeaders {
        headers: Vec::new(),
        invalid_name: None,
    };
    let mut native = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is a live librdkafka message while `message`
    // is borrowed, and the headers librdkafka returns belong to it. Each
    // name is a NUL-terminated string and each value is null or `size`
    // readable bytes. Both are copied before this function returns.
    unsafe {
        let found = rdsys::rd_kafka_message_headers(message.ptr(), &mut native);
        if found != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return copied;
        }
        for index in 0..rdsys::rd_kafka_header_cnt(native) {
            let mut name = std::ptr::null();
            let mut value = std::ptr::null();
            let mut size = 0;
            let read =
                rdsys::rd_kafka_header_get_all(native, index, &mut name, &mut value, &mut size);
            if read != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                break;
            }
            let name = CStr::from_ptr(name).to_bytes();
            let value = (!value.is_null())
                .then(|| std::slice::from_raw_parts(value.cast::<u8>(), size).to_vec());
            let name = decode_header_name(name).unwrap_or_else(|bad| {
                copied.invalid_name.get_or_insert(bad);
                String::from_utf8_lossy(name).into_owned()
            });
            copied.headers.push((name, value));
        }
    }
    copied
}

/// Reads `topic` from the first record at or after `since` up to where the
/// consumer group will resume (its committed offset, or the end of the
/// partition for a group without one), so that replaying these records and
/// then consuming with the group handles each record once, in order.
pub fn read_history(
    bootstrap_servers: &str,
    group_id: &str,
    topic: &str,
    since: Instant,
    timeout: Duration,
) -> Result<Vec<HistoryRecord>, KafkaError> {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;

    let metadata = reader.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();

    let mut by_time = TopicPartitionList::new();
    for partition in &partitions {
        by_time.add_partition_offset(topic, *partition, Offset::Offset(since))?;
    }
    // Replaying from the beginning gives the same index, only slower, so a
    // broker that cannot search by time costs time, not correctness.
    let starts = reader.offsets_for_times(by_time, timeout).unwrap_or_else(|error| {
        log::warn!("failed to find map-status offsets by time, replaying from the beginning topic={topic} error={error}");
        let mut beginning = TopicPartitionList::new();
        for partition in &partitions {
            let _ = beginning.add_partition_offset(topic, *partition, Offset::Beginning);
        }
        beginning
    });

    let mut wanted = TopicPartitionList::new();
    for partition in &partitions {
        wanted.add_partition(topic, *partition);
    }
    let committed = reader.committed_offsets(wanted, timeout)?;

    let mut assignment = TopicPartitionList::new();
    let mut ends: HashMap<i32, i64> = HashMap::new();
    for partition in &partitions {
        let (low, high) = reader.fetch_watermarks(topic, *partition, timeout)?;
        let end = match committed
            .find_partition(topic, *partition)
            .map(|p| p.offset())
        {
            Some(Offset::Offset(offset)) => offset.min(high),
            _ => high,
        };
        // offsets_for_times returns End when no record is that recent.
        let found = match starts.find_partition(topic, *partition).map(|p| p.offset()) {
            Some(Offset::Offset(offset)) => offset.min(end),
            Some(Offset::Beginning) => low,
            _ => end,
        };
        let start = if found > low && newer_than(&reader, topic, *partition, found - 1, since)? {
            log::warn!(
                "broker answered the time lookup with a too late offset, replaying the partition from its beginning topic={topic} partition={partition} answered={found}"
            );
            low
        } else {
            found
        };
        log::debug!("map-status history topic={topic} partition={partition} start={start} end={end} low={low} high={high}");
        if start < end {
            assignment.add_partition_offset(topic, *partition, Offset::Offset(start))?;
            ends.insert(*partition, end);
        }
    }
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    reader.assign(&assignment)?;

    let deadline = WallInstant::now() + timeout;
    let mut records = Vec::new();
    while !ends.is_empty() {
        if WallInstant::now() > deadline {
            log::warn!(
                "presence history not read to the end in time, some riders may be missing topic={topic} partitions_left={:?}",
                ends.keys().collect::<Vec<_>>()
            );
            break;
        }

        if let Some(result) = reader.poll(Duration::from_millis(100)) {
            let message = result?;
            let partition = message.partition();
            if ends
                .get(&partition)
                .is_some_and(|&end| message.offset() < end)
            {
                let copied = copy_headers(&message);
                match copied.invalid_name {
                    Some(bad) => log::warn!(
                        "skipping map-status history record topic={topic} partition={partition} offset={} reason={:?} detail={}",
                        message.offset(),
                        bad.reason,
                        bad.detail
                    ),
                    None => records.push(HistoryRecord {
                        partition,
                        offset: message.offset(),
                        headers: copied.headers,
                        payload: message.payload().map(<[u8]>::to_vec),
                    }),
                }
            }
        }

        // The position, not the last record, shows when a partition is done:
        // transaction markers take offsets that no record is delivered for.
        for element in reader.position()?.elements() {
            let done = match (ends.get(&element.partition()), element.offset()) {
                (Some(&end), Offset::Offset(next)) => next >= end,
                _ => false,
            };
            if done {
                ends.remove(&element.partition());
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer() -> BaseConsumer<GroupContext> {
        ClientConfig::new()
            .set("group.id", "readiness-test")
            .create_with_context(GroupContext {
                topic: "EVENT_TOPIC_CHARACTER_STATUS".to_string(),
                assigned: Arc::default(),
                errors: ClientErrorLog::default(),
            })
            .expect("create consumer without a broker")
    }

    fn held(consumer: &BaseConsumer<GroupContext>) -> bool {
        consumer.context().assigned.load(Ordering::SeqCst)
    }

    #[test]
    fn assignment_tracks_revoke_and_empty_share() {
        let consumer = consumer();
        let mut partitions = TopicPartitionList::new();
        partitions.add_partition("EVENT_TOPIC_CHARACTER_STATUS", 0);
        let empty = TopicPartitionList::new();
        assert!(!held(&consumer));

        consumer
            .context()
            .post_rebalance(&consumer, &Rebalance::Assign(&partitions));
        assert!(held(&consumer));

        consumer
            .context()
            .post_rebalance(&consumer, &Rebalance::Revoke(&partitions));
        assert!(!held(&consumer));

        consumer
            .context()
            .post_rebalance(&consumer, &Rebalance::Assign(&empty));
        assert!(!held(&consumer));
    }
}
