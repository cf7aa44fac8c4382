//! The Kafka cluster the service talks to: the embedded in-process broker
//! when none is configured, and creation of the topics the service uses.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// librdkafka's in-process mock cluster, listening on loopback. It lives as
/// long as this value; dropping it stops the broker.
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster on a free loopback port.
    pub fn start() -> Result<EmbeddedBroker, KafkaError> {
        Ok(EmbeddedBroker {
            cluster: MockCluster::new(1)?,
        })
    }

    /// `host:port` for clients, inside or outside this process.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Creates a topic directly on the mock cluster.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), KafkaError> {
        self.cluster.create_topic(topic, partitions, 1)
    }
}

/// How long listing the cluster's topics may take. The call blocks its
/// thread, so a stop signal during start-up waits up to this long.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates each topic that does not exist yet. A broker that refuses gives a
/// warning per topic, not an error: the topics may be managed elsewhere.
pub async fn ensure_topics(bootstrap_servers: &str, topics: &[&str], partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = match ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .create()
    {
        Ok(admin) => admin,
        Err(error) => {
            log::warn!("failed to create Kafka admin client, topics are not created error={error}");
            return;
        }
    };

    // Only missing topics are created: a cluster may have the topics but
    // deny or not implement CreateTopics (librdkafka's mock cluster times
    // out on it).
    let existing: Vec<String> = match admin.inner().fetch_metadata(None, METADATA_TIMEOUT) {
        Ok(metadata) => metadata
            .topics()
            .iter()
            .filter(|topic| topic.error().is_none() && !topic.partitions().is_empty())
            .map(|topic| topic.name().to_string())
            .collect(),
        Err(error) => {
            log::warn!("failed to list topics, trying to create all of them error={error}");
            Vec::new()
        }
    };
    let missing: Vec<&str> = topics
        .iter()
        .copied()
        .filter(|topic| !existing.iter().any(|name| name == topic))
        .collect();
    if missing.is_empty() {
        log::debug!("every topic exists topics={}", topics.len());
        return;
    }

    let new_topics: Vec<NewTopic> = missing
        .iter()
        // -1: the broker's default replication factor.
        .map(|topic| NewTopic::new(topic, partitions, TopicReplication::Fixed(-1)))
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));

    let results = match admin.create_topics(&new_topics, &options).await {
        Ok(results) => results,
        Err(error) => {
            log::warn!(
                "failed to create topics; create them by hand if they are missing error={error}"
            );
            return;
        }
    };

    for result in results {
        match result {
            Ok(topic) => log::info!("topic created topic={topic} partitions={partitions}"),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                log::debug!("topic exists topic={topic}")
            }
            Err((topic, code)) => {
                log::warn!("failed to create topic; create it by hand if it is missing topic={topic} error={code}")
            }
        }
    }
}
