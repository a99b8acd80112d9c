//! A real load balancer for the rollout run: HAProxy from the Debian
//! packages (installed here when missing), its configuration, and its
//! runtime API, through which instances join and leave, as a Kubernetes
//! Service's endpoints do.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Server slots in the backend: three replicas, a surge one, and room.
pub const SLOTS: usize = 6;

/// Health checks on the readiness route: every 100 ms, down after two
/// failures, up after one success. A stop is seen within about 300 ms.
const CHECKS: &str = "inter 100ms fall 2 rise 1";

pub struct Haproxy {
    child: Child,
    dir: PathBuf,
    /// Clients' HTTP/1.1 entry.
    pub http1: SocketAddr,
    /// Clients' HTTP/2 entry (prior knowledge).
    pub http2: SocketAddr,
}

/// HAProxy's own counters, summed over the backend's servers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    /// Requests it sent again after a failed connect (`wretr`).
    pub retries: u64,
    /// Of those, sent to another server (`wredis`).
    pub redispatches: u64,
    /// Failed connects to a server (`econ`).
    pub connect_errors: u64,
    /// Responses a server cut or never gave (`eresp`).
    pub response_errors: u64,
}

impl std::ops::Sub for Counters {
    type Output = Counters;
    fn sub(self, o: Counters) -> Counters {
        Counters {
            retries: self.retries - o.retries,
            redispatches: self.redispatches - o.redispatches,
            connect_errors: self.connect_errors - o.connect_errors,
            response_errors: self.response_errors - o.response_errors,
        }
    }
}

/// The `haproxy` binary, installed from Debian's packages if missing
/// (as root; CI runs as root).
pub fn ensure_installed() -> Result<(), String> {
    if Command::new("haproxy").arg("-v").output().is_ok() {
        return Ok(());
    }
    eprintln!("[rollout] installing haproxy (apt-get)");
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-q", "haproxy"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status();
    match installed {
        Ok(s) if s.success() => Ok(()),
        _ => Err(
            "haproxy is missing and `apt-get install haproxy` failed (run as root, or install it)"
                .into(),
        ),
    }
}

impl Haproxy {
    pub fn start() -> Haproxy {
        let dir = std::env::temp_dir().join(format!("stoppable-rollout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let (http1, http2) = (free_port(), free_port());
        let config = dir.join("haproxy.cfg");
        std::fs::write(
            &config,
            configuration(&dir.join("admin.sock"), http1, http2),
        )
        .expect("the configuration written");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy starts");
        let haproxy = Haproxy {
            child,
            dir,
            http1,
            http2,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(http1).is_err() || haproxy.command("show info").is_err() {
            assert!(Instant::now() < deadline, "haproxy did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        haproxy
    }

    /// One command on the runtime API; its answer.
    pub fn command(&self, command: &str) -> std::io::Result<String> {
        let mut socket = UnixStream::connect(self.dir.join("admin.sock"))?;
        socket.write_all(format!("{command}\n").as_bytes())?;
        let mut answer = String::new();
        socket.read_to_string(&mut answer)?;
        Ok(answer)
    }

    /// Puts the instance at `addr` in slot `slot`, and in rotation once its
    /// health check passes.
    pub fn join(&self, slot: usize, addr: SocketAddr) {
        let server = format!("app/s{slot}");
        let ip = addr.ip();
        let port = addr.port();
        self.command(&format!("set server {server} addr {ip} port {port}"))
            .expect("set addr");
        self.command(&format!("set server {server} state ready"))
            .expect("set ready");
    }

    /// Takes slot `slot` out (its instance is gone).
    pub fn leave(&self, slot: usize) {
        let _ = self.command(&format!("set server app/s{slot} state maint"));
    }

    /// Waits until slot `slot`'s server is up (its readiness route said 200).
    pub fn wait_up(&self, slot: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .stat(|row| row("svname") == format!("s{slot}") && row("status").starts_with("UP"))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// The backend's counters now.
    pub fn counters(&self) -> Counters {
        let mut total = Counters::default();
        let _ = self.stat(|row| {
            if row("pxname") == "app" && row("svname") == "BACKEND" {
                let n = |name: &str| row(name).parse().unwrap_or(0);
                total = Counters {
                    retries: n("wretr"),
                    redispatches: n("wredis"),
                    connect_errors: n("econ"),
                    response_errors: n("eresp"),
                };
            }
            false
        });
        total
    }

    /// Calls `row` on each row of `show stat` (a field by its name) until
    /// it says true; whether one did.
    fn stat(&self, mut row: impl FnMut(&dyn Fn(&str) -> String) -> bool) -> bool {
        let Ok(csv) = self.command("show stat") else {
            return false;
        };
        let mut lines = csv.lines();
        let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
            return false;
        };
        let names: Vec<&str> = header.split(',').collect();
        lines.any(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let get = |name: &str| {
                names
                    .iter()
                    .position(|n| *n == name)
                    .and_then(|i| fields.get(i))
                    .map_or(String::new(), |f| (*f).to_owned())
            };
            row(&get)
        })
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The configuration: two entries (HTTP/1.1, HTTP/2), one backend whose
/// slots start in maintenance; HTTP/1.1 to the servers with keep-alive and
/// connection reuse (HAProxy's defaults), a request retried on another
/// server when its connect fails.
fn configuration(admin: &Path, http1: SocketAddr, http2: SocketAddr) -> String {
    let mut servers = String::new();
    for slot in 0..SLOTS {
        servers.push_str(&format!("    server s{slot} 127.0.0.1:9 disabled\n"));
    }
    format!(
        "global
    stats socket {admin} mode 600 level admin
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    timeout check 500ms
    retries 3
    option redispatch
frontend http1
    bind {http1}
    default_backend app
frontend http2
    bind {http2} proto h2
    default_backend app
backend app
    balance roundrobin
    option httpchk GET /ready
    http-check expect status 200
    default-server check {CHECKS}
{servers}",
        admin = admin.display()
    )
}

/// A free port on 127.0.0.1 (bound, then released for HAProxy).
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}
