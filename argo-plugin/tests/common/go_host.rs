//! Builds and drives `tests/go-host` (HashiCorp go-plugin in an Argo-shaped host). Shared by this
//! crate's protocol test and the root crate's `tests/argo_plugin.rs` (included by path), so both
//! drive the plugin the same way: the host runs its fixed checks, says `ready`, then answers one
//! `verify` command per stdin line, letting the test change what the plugin reads in between.
//! No sleeps: every wait is a channel receive with a deadline.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;

const GO_PLUGIN_SOURCES: &str = "/usr/share/gocode/src/github.com/hashicorp/go-plugin";
const HOST_SOURCE: &str = include_str!("../go-host/main.go");
/// Generous: the first call may wait for the plugin to start and for a cold Go build cache.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the Go host cannot be built here, if it cannot (`tests/go-host/install-deps.sh`).
pub fn go_missing() -> Option<String> {
    if Command::new("go").arg("version").output().is_err() {
        return Some("`go` is not on PATH".into());
    }
    if !Path::new(GO_PLUGIN_SOURCES).is_dir() {
        return Some(format!("{GO_PLUGIN_SOURCES} is missing"));
    }
    None
}

/// Builds the host in `work` (GOPATH mode, Debian packages, no downloads). The Go build cache
/// is shared next to `work` so that the second test building it is quick.
pub fn build(work: &Path) -> PathBuf {
    let package = work.join("gopath/src/argohost");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(package.join("main.go"), HOST_SOURCE).unwrap();
    let binary = work.join("argohost");
    let cache = work.parent().unwrap_or(work).join("go-build-cache");
    let output = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg("argohost")
        .current_dir(work)
        .env("GO111MODULE", "off")
        .env(
            "GOPATH",
            format!("{}:/usr/share/gocode", work.join("gopath").display()),
        )
        .env("GOCACHE", cache)
        .env("GOFLAGS", "")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "go build failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    binary
}

/// One `verify` answer: `Plugin.VerifyWeight`'s reply as the host decoded it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verify {
    pub verified: i32,
    pub error: String,
    pub call_error: String,
}

/// A running host (and, below it, the plugin it launched).
pub struct GoHost {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    log: Option<JoinHandle<String>>,
}

impl GoHost {
    /// Starts `host PLUGIN ARGS…` with `env` added (go-plugin passes the host's environment to
    /// the plugin, as Argo does) and waits for its fixed checks to finish.
    pub fn start(host: &Path, plugin: &str, args: &[&str], env: &[(&str, &OsStr)]) -> GoHost {
        let mut command = Command::new(host);
        command
            .arg(plugin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
        let mut host = GoHost {
            stdin: child.stdin.take(),
            child,
            lines,
            log: Some(log),
        };
        let ready = host.next_line("ready");
        if ready != "ready" {
            host.fail(&format!("expected `ready`, got {ready:?}"));
        }
        host
    }

    /// `Plugin.VerifyWeight` with `weight` and experiment destinations `SERVICE:HASH:WEIGHT`.
    pub fn verify(&mut self, weight: i32, additional: &[&str]) -> Verify {
        let command = format!("verify {weight} {}\n", additional.join(" "));
        if let Err(e) = self.send(&command) {
            self.fail(&format!("cannot send {command:?}: {e}"));
        }
        let line = self.next_line(&command);
        match serde_json::from_str(&line) {
            Ok(verify) => verify,
            Err(e) => self.fail(&format!("bad answer {line:?}: {e}")),
        }
    }

    /// Sends `quit` (the host `Kill()`s the plugin, as Argo does at shutdown), waits for the host
    /// to exit and returns its status and its log (checks, and the plugin's stderr re-logged).
    pub fn finish(mut self) -> (ExitStatus, String) {
        let _ = self.send("quit\n");
        self.stdin = None;
        let deadline = Instant::now() + STEP_TIMEOUT;
        // The host's stdout closes when it exits.
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => self.fail("the host did not exit in time"),
            }
        }
        let status = self.child.wait().unwrap();
        (status, self.take_log())
    }

    fn send(&mut self, command: &str) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or(std::io::ErrorKind::BrokenPipe)?;
        stdin.write_all(command.as_bytes())?;
        stdin.flush()
    }

    fn next_line(&mut self, waiting_for: &str) -> String {
        match self.lines.recv_timeout(STEP_TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                self.fail(&format!("no answer to {waiting_for:?} in time"))
            }
            Err(RecvTimeoutError::Disconnected) => self.fail(&format!(
                "the host exited while waiting for {waiting_for:?}"
            )),
        }
    }

    fn take_log(&mut self) -> String {
        self.log
            .take()
            .map(|log| log.join().unwrap_or_default())
            .unwrap_or_default()
    }

    fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!("{what}; the host's log:\n{}", self.take_log());
    }
}

impl Drop for GoHost {
    fn drop(&mut self) {
        // A failed assertion between steps must not leave the host (and its plugin) behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
