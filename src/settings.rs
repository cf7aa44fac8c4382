//! Start-up settings from the command line and the environment.
//!
//! The environment variables keep the reference service's names, so a
//! deployment of it can switch to this one without changes.

use std::collections::HashMap;
use std::path::PathBuf;

/// Upper bound for TOPIC_PARTITIONS; far above any need of this service, and
/// it keeps a typo from asking the broker for billions of partitions.
pub const MAX_TOPIC_PARTITIONS: i32 = 10_000;

/// Topic names; each defaults to the name of its environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    pub transport_status: String,
    pub character_status: String,
    pub channel_status: String,
    pub map_status: String,
    pub character_command: String,
    pub channel_status_command: String,
}

impl Topics {
    /// Every topic of the contract, produced to or consumed from.
    pub fn all(&self) -> [&str; 6] {
        [
            &self.transport_status,
            &self.character_status,
            &self.channel_status,
            &self.map_status,
            &self.character_command,
            &self.channel_status_command,
        ]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub config_dir: PathBuf,
    /// `None` starts the embedded broker.
    pub bootstrap_servers: Option<String>,
    pub topics: Topics,
    pub rest_port: u16,
    /// Partitions of each topic the service creates.
    pub topic_partitions: i32,
    /// Producer transactional id; `None` makes one unique to this process.
    pub transactional_id: Option<String>,
    /// Consumer group of the three topic consumers.
    pub consumer_group: String,
    /// Where rejected records are copied; `None` copies nowhere.
    pub dead_letter_topic: Option<String>,
    /// env_logger filter from LOG_LEVEL, used when RUST_LOG is unset.
    pub log_filter: String,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Box<Settings>),
    Help,
    Version,
}

pub const HELP: &str = "\
atlas-transports: runs the scheduled transports of a game-server cluster over Kafka

Usage: atlas-transports [--config DIR]

Options:
  --config DIR   configuration folder with routes/*.json, vessels/*.json and
                 tenants.json [default: ./config]
  -h, --help     print this help
  -V, --version  print the version

Environment:
  BOOTSTRAP_SERVERS              comma-separated Kafka brokers; unset starts an
                                 embedded in-process broker on loopback
  EVENT_TOPIC_TRANSPORT_STATUS   topic for ARRIVED/DEPARTED events
  EVENT_TOPIC_CHARACTER_STATUS   topic of character events (LOGOUT)
  EVENT_TOPIC_CHANNEL_STATUS     topic of channel events (STARTED, SHUTDOWN)
  EVENT_TOPIC_MAP_STATUS         topic of map events (CHARACTER_ENTER/EXIT)
  COMMAND_TOPIC_CHARACTER        topic for CHANGE_MAP commands
  COMMAND_TOPIC_CHANNEL_STATUS   topic for STATUS_REQUEST commands
                                 (each topic defaults to its variable's name)
  REST_PORT                      port of the HTTP API, on all interfaces
                                 [default: 8080]
  TOPIC_PARTITIONS               partitions of topics the service creates
                                 [default: 3]
  TRANSACTIONAL_ID               producer transactional id [default: unique
                                 per process]
  CONSUMER_GROUP                 consumer group id [default: atlas-transports]
  DEAD_LETTER_TOPIC              topic that receives a copy of each rejected
                                 record [default: unset, no copies]
  LOG_LEVEL                      Panic, Fatal, Error, Warn, Info, Debug or
                                 Trace [default: Info]
  RUST_LOG                       env_logger filter; overrides LOG_LEVEL, e.g.
                                 RUST_LOG=info,mailbox=debug
  KAFKA_DEBUG                    librdkafka debug contexts for the producer and
                                 consumers, e.g. cgrp,eos (needs RUST_LOG to
                                 let librdkafka=debug through)
";

impl Command {
    /// Parses the arguments (without the program name) and the environment.
    pub fn parse(args: &[String], env: &HashMap<String, String>) -> Result<Command, String> {
        let mut config_dir = PathBuf::from("config");
        let mut args = args.iter();

        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => return Ok(Command::Help),
                "-V" | "--version" => return Ok(Command::Version),
                "--config" => {
                    let dir = args.next().ok_or("--config needs a folder: --config DIR")?;
                    config_dir = PathBuf::from(dir);
                }
                other => {
                    if let Some(dir) = other.strip_prefix("--config=") {
                        config_dir = PathBuf::from(dir);
                    } else {
                        return Err(format!("unknown argument `{other}`; see --help"));
                    }
                }
            }
        }

        Ok(Command::Run(Box::new(Settings::from_env(config_dir, env)?)))
    }
}

impl Settings {
    /// Every topic the service uses: the contract's and the dead-letter topic.
    pub fn topics_in_use(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = self.topics.all().to_vec();
        topics.extend(self.dead_letter_topic.as_deref());
        topics
    }

    pub fn from_env(
        config_dir: PathBuf,
        env: &HashMap<String, String>,
    ) -> Result<Settings, String> {
        let non_empty = |name: &str| {
            env.get(name)
                .filter(|value| !value.trim().is_empty())
                .cloned()
        };
        let topic = |name: &str| non_empty(name).unwrap_or_else(|| name.to_string());

        let rest_port = match non_empty("REST_PORT") {
            None => 8080,
            Some(text) => text.trim().parse().map_err(|_| {
                format!("invalid REST_PORT `{text}`: expected a port number from 0 to 65535")
            })?,
        };

        let topic_partitions = match non_empty("TOPIC_PARTITIONS") {
            None => 3,
            Some(text) => match text.trim().parse::<i32>() {
                Ok(count) if (1..=MAX_TOPIC_PARTITIONS).contains(&count) => count,
                _ => {
                    return Err(format!(
                        "invalid TOPIC_PARTITIONS `{text}`: expected a whole number from 1 to {MAX_TOPIC_PARTITIONS}"
                    ))
                }
            },
        };

        let log_filter = log_filter(non_empty("LOG_LEVEL").as_deref())?;

        // A blank value from a deployment template would otherwise start the
        // embedded broker in production, where nothing else can reach it.
        if env
            .get("BOOTSTRAP_SERVERS")
            .is_some_and(|value| value.trim().is_empty())
        {
            return Err(
                "BOOTSTRAP_SERVERS is set but empty: give host:port of the Kafka brokers, or unset it to start the embedded broker"
                    .to_string(),
            );
        }

        for name in TOPIC_VARIABLES.iter().chain(["DEAD_LETTER_TOPIC"].iter()) {
            if let Some(topic) = non_empty(name) {
                check_topic_name(name, &topic)?;
            }
        }

        Ok(Settings {
            config_dir,
            bootstrap_servers: non_empty("BOOTSTRAP_SERVERS"),
            topics: Topics {
                transport_status: topic("EVENT_TOPIC_TRANSPORT_STATUS"),
                character_status: topic("EVENT_TOPIC_CHARACTER_STATUS"),
                channel_status: topic("EVENT_TOPIC_CHANNEL_STATUS"),
                map_status: topic("EVENT_TOPIC_MAP_STATUS"),
                character_command: topic("COMMAND_TOPIC_CHARACTER"),
                channel_status_command: topic("COMMAND_TOPIC_CHANNEL_STATUS"),
            },
            rest_port,
            topic_partitions,
            transactional_id: non_empty("TRANSACTIONAL_ID"),
            consumer_group: non_empty("CONSUMER_GROUP")
                .unwrap_or_else(|| "atlas-transports".to_string()),
            dead_letter_topic: non_empty("DEAD_LETTER_TOPIC"),
            log_filter,
        })
    }
}

/// Variables that name the contract's topics.
const TOPIC_VARIABLES: [&str; 6] = [
    "EVENT_TOPIC_TRANSPORT_STATUS",
    "EVENT_TOPIC_CHARACTER_STATUS",
    "EVENT_TOPIC_CHANNEL_STATUS",
    "EVENT_TOPIC_MAP_STATUS",
    "COMMAND_TOPIC_CHARACTER",
    "COMMAND_TOPIC_CHANNEL_STATUS",
];

/// Kafka's rule for topic names: 1 to 249 of `a-z A-Z 0-9 . _ -`, and not
/// `.` or `..`.
fn check_topic_name(variable: &str, topic: &str) -> Result<(), String> {
    let legal = topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if legal {
        Ok(())
    } else {
        Err(format!(
            "invalid {variable} `{topic}`: a Kafka topic name has 1 to 249 of the characters a-z, A-Z, 0-9, '.', '_' and '-'"
        ))
    }
}

/// Maps the reference service's level names (logrus) to an env_logger filter.
fn log_filter(level: Option<&str>) -> Result<String, String> {
    let Some(level) = level else {
        return Ok("info".to_string());
    };

    let filter = match level.trim().to_ascii_lowercase().as_str() {
        // Panic and Fatal have no own level in the log crate.
        "panic" | "fatal" | "error" => "error",
        "warn" | "warning" => "warn",
        "info" => "info",
        "debug" => "debug",
        "trace" => "trace",
        _ => {
            return Err(format!(
            "invalid LOG_LEVEL `{level}`: expected Panic, Fatal, Error, Warn, Info, Debug or Trace"
        ))
        }
    };
    Ok(filter.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn settings(args: &[&str], pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        match Command::parse(&args, &env(pairs))? {
            Command::Run(settings) => Ok(*settings),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_reference() {
        let settings = settings(&[], &[]).unwrap();
        assert_eq!(settings.config_dir, PathBuf::from("config"));
        assert_eq!(settings.bootstrap_servers, None);
        assert_eq!(
            settings.topics.transport_status,
            "EVENT_TOPIC_TRANSPORT_STATUS"
        );
        assert_eq!(settings.topics.character_command, "COMMAND_TOPIC_CHARACTER");
        assert_eq!(settings.rest_port, 8080);
        assert_eq!(settings.topic_partitions, 3);
        assert_eq!(settings.log_filter, "info");
        assert_eq!(settings.consumer_group, "atlas-transports");
        assert_eq!(settings.dead_letter_topic, None);
    }

    #[test]
    fn environment_overrides_defaults() {
        let settings = settings(
            &["--config", "/etc/transports"],
            &[
                ("BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                ("EVENT_TOPIC_TRANSPORT_STATUS", "transport.status"),
                ("REST_PORT", "9000"),
                ("LOG_LEVEL", "Fatal"),
            ],
        )
        .unwrap();
        assert_eq!(settings.config_dir, PathBuf::from("/etc/transports"));
        assert_eq!(
            settings.bootstrap_servers.as_deref(),
            Some("127.0.0.1:9092")
        );
        assert_eq!(settings.topics.transport_status, "transport.status");
        assert_eq!(settings.rest_port, 9000);
        assert_eq!(settings.log_filter, "error");
    }

    #[test]
    fn blank_bootstrap_servers_is_rejected() {
        let error = settings(&[], &[("BOOTSTRAP_SERVERS", " ")]).unwrap_err();
        assert!(error.contains("BOOTSTRAP_SERVERS"), "{error}");
        assert!(error.contains("unset it"), "{error}");
    }

    #[test]
    fn invalid_values_are_named() {
        let error = settings(&[], &[("REST_PORT", "eighty")]).unwrap_err();
        assert!(error.contains("REST_PORT"), "{error}");

        let error = settings(&[], &[("LOG_LEVEL", "loud")]).unwrap_err();
        assert!(error.contains("LOG_LEVEL"), "{error}");

        let error = settings(&["--conf"], &[]).unwrap_err();
        assert!(error.contains("--conf"), "{error}");

        let error = settings(&["--config"], &[]).unwrap_err();
        assert!(error.contains("--config"), "{error}");

        let error = settings(&[], &[("TOPIC_PARTITIONS", "2147483647")]).unwrap_err();
        assert!(error.contains("TOPIC_PARTITIONS"), "{error}");

        let error = settings(&[], &[("COMMAND_TOPIC_CHARACTER", "bad topic/ü")]).unwrap_err();
        assert!(error.contains("COMMAND_TOPIC_CHARACTER"), "{error}");
    }
}
