//! tansu, an Apache Kafka-compatible broker, as a separate process that the
//! tests start, kill with SIGKILL, and start again on the same port and
//! storage.
//!
//! The binary is `$TANSU` when set, else `tansu` on `PATH`. Each broker gets
//! its own temporary folder: tansu resolves its `sqlite://broker.db` storage
//! against the working folder, so records, topics and committed group
//! offsets survive a restart from that folder. tansu does not support
//! transactions, so the service writes idempotently against it.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant as WallInstant};

/// Start-up of a broker that takes longer than this is a failure.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// Returns the tansu binary to run, if there is one.
pub fn tansu_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TANSU") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|folder| folder.join("tansu"))
        .find(|candidate| candidate.is_file())
}

/// Returns whether the tests must fail rather than skip when tansu is
/// missing (`.ci/run` sets `ATLAS_REQUIRE_TANSU=1`).
pub fn tansu_required() -> bool {
    std::env::var_os("ATLAS_REQUIRE_TANSU").is_some_and(|value| value != "0")
}

/// Returns the tansu binary, or prints why a tansu test is skipped and
/// returns `None`. Panics instead when tansu is required.
pub fn tansu_or_skip(test: &str) -> Option<PathBuf> {
    match tansu_binary() {
        Some(binary) => Some(binary),
        None if tansu_required() => {
            panic!("tansu not found: set TANSU or put tansu on PATH (ATLAS_REQUIRE_TANSU is set)")
        }
        None => {
            eprintln!("skipped {test} on tansu: tansu not found on PATH or in $TANSU");
            None
        }
    }
}

pub struct TansuBroker {
    binary: PathBuf,
    folder: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl TansuBroker {
    /// Starts a broker on a free loopback port with empty storage.
    pub fn start(binary: PathBuf) -> TansuBroker {
        let folder = super::temp_dir("tansu");
        let port = super::free_port();
        let mut broker = TansuBroker {
            binary,
            folder,
            port,
            child: None,
        };
        broker.restart();
        broker
    }

    pub fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker with SIGKILL and waits for it to end.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and storage, and waits until
    /// it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "tansu is already running");
        let address = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.folder.join("tansu.log"))
            .expect("open tansu log");
        let child = Command::new(&self.binary)
            .arg("broker")
            .arg("--listener-url")
            .arg(&address)
            .arg("--advertised-listener-url")
            .arg(&address)
            .arg("--storage-engine")
            .arg("sqlite://broker.db")
            .current_dir(&self.folder)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("failed to start {}: {error}", self.binary.display()));
        self.child = Some(child);
        self.wait_until_listening();
    }

    fn wait_until_listening(&mut self) {
        let deadline = WallInstant::now() + START_PATIENCE;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "tansu exited during start-up with {status}; log: {}",
                    self.log()
                );
            }
            assert!(
                WallInstant::now() < deadline,
                "tansu did not listen on port {} within {START_PATIENCE:?}; log: {}",
                self.port,
                self.log()
            );
            // Polling the port is the only readiness signal tansu gives.
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Returns the broker's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.folder.join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}
