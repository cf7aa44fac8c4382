//! The real binary as a child process: its log lines, signals, and exit.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant as WallInstant};

/// Guards against a hung binary; never reached when things work.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct RunningService {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl RunningService {
    /// Starts the binary on its embedded broker with `--config config_dir`
    /// and the given extra environment.
    pub fn start(config_dir: &Path, env: &[(&str, &str)]) -> RunningService {
        let mut command = Command::new(env!("CARGO_BIN_EXE_atlas-transports"));
        command
            .arg("--config")
            .arg(config_dir)
            .env_remove("BOOTSTRAP_SERVERS")
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start atlas-transports");

        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[service] {line}");
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        RunningService { child, lines }
    }

    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_for_line(&self, needle: &str) -> String {
        let deadline = WallInstant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(WallInstant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(error) => panic!("no log line with `{needle}`: {error}"),
            }
        }
    }

    /// Waits until each of `needles` has appeared in some log line, in any
    /// order.
    pub fn wait_for_lines(&self, needles: &[&str]) {
        let mut missing: Vec<&str> = needles.to_vec();
        let deadline = WallInstant::now() + PATIENCE;
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(WallInstant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => missing.retain(|needle| !line.contains(needle)),
                Err(error) => panic!("no log lines with {missing:?}: {error}"),
            }
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = WallInstant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(WallInstant::now() < deadline, "service did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
