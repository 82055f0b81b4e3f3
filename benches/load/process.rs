//! The controller under test, run as its own process (the real `rollout-router run` binary) so
//! that its memory is its own: peak RSS is `VmHWM` in `/proc/<pid>/status`. Its admin port
//! answers `/ready` and `/metrics`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct ControllerProcess {
    child: Child,
    admin: SocketAddr,
    pub started: Instant,
    pub log: PathBuf,
}

/// A free loopback port (bound, then released for the controller to bind).
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

impl ControllerProcess {
    /// Starts `rollout-router run` against the kubeconfig, logging at the default level to
    /// `log` (stderr of a production pod).
    pub fn spawn(kubeconfig: &Path, log: PathBuf, extra: &[&str]) -> anyhow::Result<Self> {
        let admin = free_port()?;
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("creating the controller log {}", log.display()))?;
        let started = Instant::now();
        let binary = env!("CARGO_BIN_EXE_rollout-router");
        // For profiling: a program that `exec`s its arguments (keeping the pid, so RSS and
        // SIGTERM still reach the controller), e.g. a script that sets LD_PRELOAD for heaptrack.
        let mut command = match std::env::var(WRAPPER_ENV) {
            Ok(wrapper) if !wrapper.trim().is_empty() => {
                let mut command = Command::new(wrapper.trim());
                command.arg(binary);
                command
            }
            _ => Command::new(binary),
        };
        let child = command
            .arg("run")
            .arg("--no-leader-election")
            .arg("--admin-addr")
            .arg(admin.to_string())
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .spawn()
            .context("starting rollout-router run")?;
        Ok(Self {
            child,
            admin,
            started,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET path` on the admin port: (status code, body).
    async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let mut stream = tokio::net::TcpStream::connect(self.admin).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("admin server: no status line in {text:?}"))?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((code, body))
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!(
                "the controller exited ({status}); see {}",
                self.log.display()
            );
        }
        Ok(())
    }

    /// Waits until `/ready` answers 200; returns the time since the process started.
    pub async fn wait_ready(&mut self, within: Duration) -> anyhow::Result<Duration> {
        let deadline = Instant::now() + within;
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        loop {
            tick.tick().await;
            self.check_alive()?;
            if let Ok((200, _)) = self.get("/ready").await {
                return Ok(self.started.elapsed());
            }
            if Instant::now() > deadline {
                anyhow::bail!("the controller was not ready within {within:?}");
            }
        }
    }

    /// The sum of every sample of a metric family (`rollout_router_reconciles_total`: all
    /// results).
    pub async fn metric_sum(&self, name: &str) -> anyhow::Result<f64> {
        let (_, body) = self.get("/metrics").await?;
        Ok(body
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with([' ', '{']))
            })
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum())
    }

    /// Waits until the reconcile counter reaches `target`.
    pub async fn wait_reconciles(&mut self, target: f64, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            self.check_alive()?;
            if self.metric_sum(RECONCILES).await? >= target {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!("fewer than {target} reconciles within {within:?}");
            }
        }
    }

    /// `VmHWM` (peak resident set) and `VmRSS` in KiB.
    pub fn memory_kib(&self) -> anyhow::Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| anyhow::anyhow!("no {key} in /proc/{}/status", self.pid()))
        };
        Ok((field("VmHWM:")?, field("VmRSS:")?))
    }

    /// Total CPU time (user + system) the process used so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // Fields after the command name (which may contain spaces, hence the last ')').
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| anyhow::anyhow!("unexpected /proc/<pid>/stat"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 of stat (1-based): 11 and 12 counted from 0
        // after the name. In clock ticks, 100 per second on Linux.
        Ok(Duration::from_millis((ticks(11) + ticks(12)) * 10))
    }

    /// Stops the controller gracefully (SIGTERM), killing it if it does not exit in time.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                anyhow::bail!("the controller ignored SIGTERM for 10 s (killed)");
            }
        }
    }
}

/// Names a program the controller is started through (see [`ControllerProcess::spawn`]).
pub const WRAPPER_ENV: &str = "ROLLOUT_ROUTER_BENCH_WRAPPER";
pub const RECONCILES: &str = "rollout_router_reconciles_total";
pub const RECONCILE_SECONDS: &str = "rollout_router_reconcile_duration_seconds_sum";
pub const RECONCILE_COUNT: &str = "rollout_router_reconcile_duration_seconds_count";
