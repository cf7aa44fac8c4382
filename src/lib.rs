//! atlas-transports: runs the scheduled transports of a multi-tenant game
//! cluster and talks to the rest of the cluster over Kafka.
//!
//! The domain (timetable, route definitions, configuration, wire formats)
//! knows nothing of actix; the actors in `actors/` use it, and `service`
//! wires them together for the binary and the integration tests.

pub mod batch_writer;
pub mod broker;
pub mod client_errors;
pub mod clock;
pub mod config;
pub mod http;
pub mod kafka_consumer;
pub mod memory;
pub mod metrics;
pub mod presence;
pub mod records;
pub mod route_table;
pub mod routes;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod tenant;
pub mod timefmt;
pub mod timetable;
pub mod trip_effects;
pub mod wire;

/// One file per actor kind, kept in the top-level `actors/` folder.
#[path = "../actors"]
pub mod actors {
    pub mod channel_registry;
    pub mod consumer;
    pub mod presence;
    pub mod producer;
    pub mod route;
}
