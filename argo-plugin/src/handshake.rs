//! The go-plugin handshake (spec 50 §2): magic cookie check, the Unix socket listener, and the
//! one line on stdout that tells the host where to connect.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use crate::PluginError;

/// Environment variable carrying the magic cookie.
pub const MAGIC_COOKIE_KEY: &str = "ARGO_ROLLOUTS_RPC_PLUGIN";
/// The value Argo sets for traffic-router plugins.
pub const MAGIC_COOKIE_VALUE: &str = "trafficrouter";
/// go-plugin's core protocol version and Argo's application protocol version.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
pub const APP_PROTOCOL_VERSION: u32 = 1;
/// What Go plugins print when started by hand (spec 50 §2.2).
pub const NOT_A_PLUGIN_MESSAGE: &str = "This binary is a plugin. These are not meant to be executed \
directly. Please execute the program that consumes these plugins, which will load any plugins \
automatically";

/// Longest Unix socket path (`sun_path` is 108 bytes including the terminator).
const MAX_SOCKET_PATH: usize = 107;

/// Fails unless the process was started by an Argo Rollouts controller as a traffic router.
pub fn check_cookie() -> Result<(), PluginError> {
    match std::env::var(MAGIC_COOKIE_KEY) {
        Ok(value) if value == MAGIC_COOKIE_VALUE => Ok(()),
        _ => Err(PluginError::NotLaunchedByArgo),
    }
}

/// Warns when the host does not offer our application protocol version; we announce it
/// anyway and let the host decide, as Go plugins do.
pub fn check_protocol_versions() {
    if let Ok(versions) = std::env::var("PLUGIN_PROTOCOL_VERSIONS") {
        let offered = versions
            .split(',')
            .any(|v| v.trim().parse::<u32>().ok() == Some(APP_PROTOCOL_VERSION));
        if !offered {
            tracing::warn!(
                %versions,
                "host does not offer protocol version {APP_PROTOCOL_VERSION}"
            );
        }
    }
}

/// The listening socket; its file is removed on drop.
#[derive(Debug)]
pub struct PluginListener {
    listener: UnixListener,
    path: PathBuf,
}

impl PluginListener {
    /// Binds a fresh socket `plugin<digits>` in `PLUGIN_UNIX_SOCKET_DIR`, `$TMPDIR` or `/tmp`.
    pub fn bind() -> Result<PluginListener, PluginError> {
        let dir = socket_dir();
        Self::bind_in(&dir)
    }

    pub fn bind_in(dir: &Path) -> Result<PluginListener, PluginError> {
        let mut last_error = None;
        for _ in 0..16 {
            let path = dir.join(format!("plugin{}", random_digits()));
            if path.as_os_str().len() > MAX_SOCKET_PATH {
                return Err(PluginError::SocketPathTooLong(path));
            }
            match UnixListener::bind(&path) {
                Ok(listener) => return Ok(PluginListener { listener, path }),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last_error = Some(e),
                Err(e) => return Err(PluginError::Listen { path, source: e }),
            }
        }
        Err(PluginError::Listen {
            path: dir.to_path_buf(),
            source: last_error.unwrap_or_else(|| std::io::ErrorKind::AddrInUse.into()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The handshake line (spec 50 §2.3), newline included.
    pub fn handshake_line(&self) -> String {
        handshake_line("unix", &self.path.to_string_lossy())
    }

    pub async fn accept(&self) -> Result<tokio::net::UnixStream, PluginError> {
        let (stream, _) = self
            .listener
            .accept()
            .await
            .map_err(|source| PluginError::Accept { source })?;
        Ok(stream)
    }

    /// Removes the socket file (the host never reconnects).
    pub fn remove_file(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for PluginListener {
    fn drop(&mut self) {
        self.remove_file();
    }
}

/// `CORE|APP|network|address|netrpc|` — six fields, the last (server certificate) empty.
pub fn handshake_line(network: &str, address: &str) -> String {
    format!("{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|{network}|{address}|netrpc|\n")
}

/// Writes the handshake line to stdout and flushes: nothing else ever goes to stdout.
pub fn announce(line: &str) -> Result<(), PluginError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|source| PluginError::Stdout { source })
}

fn socket_dir() -> PathBuf {
    let from_env = |key: &str| {
        std::env::var_os(key)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from_env("PLUGIN_UNIX_SOCKET_DIR")
        .or_else(|| from_env("TMPDIR"))
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// Ten random digits: `RandomState` is seeded from the OS, which is all we need here.
fn random_digits() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish() % 10_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_line_has_six_fields() {
        assert_eq!(
            handshake_line("unix", "/tmp/plugin123"),
            "1|1|unix|/tmp/plugin123|netrpc|\n"
        );
    }

    #[tokio::test]
    async fn listener_binds_fresh_socket_and_removes_it() {
        let dir = std::env::temp_dir();
        let listener = PluginListener::bind_in(&dir).unwrap();
        let path = listener.path().to_path_buf();
        assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("plugin")
        );
        assert!(path.exists());
        assert!(listener.handshake_line().starts_with("1|1|unix|/"));
        drop(listener);
        assert!(!path.exists());
    }

    #[test]
    fn refuses_overlong_socket_paths() {
        let dir = PathBuf::from(format!("/tmp/{}", "d".repeat(120)));
        assert!(matches!(
            PluginListener::bind_in(&dir),
            Err(PluginError::SocketPathTooLong(_))
        ));
    }
}
