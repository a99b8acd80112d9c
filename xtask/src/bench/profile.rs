//! `cargo xtask bench --profile-stop`: where the CPU of a stop of 10,000
//! idle keep-alive connections goes, beside the floor's close loop,
//! sampled with `perf` (`apt-get install linux-perf`): the kernel's share
//! by system call, the C library's (the allocator), and the program's own
//! code. It answers whether the stop can come closer to the floor: what
//! the floor does not do, the stop does for a reason (its row says which).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::idle;
use super::process::{Server, Side};

const CONNECTIONS: usize = 10_000;
/// Samples per second and CPU.
const FREQUENCY: u32 = 10_000;

/// The rows of the table: what a system call is for, and the kernel entry
/// points it is counted from (their share includes what they call).
const SYSCALLS: [(&str, &[&str]); 6] = [
    (
        "FIN and close (`shutdown`, `close`): the floor's own work; on loopback it includes the client's side of the FIN",
        &["__x64_sys_shutdown", "__x64_sys_close"],
    ),
    (
        "the look for unread bytes before closing (`recvfrom`, MSG_PEEK): B4",
        &["__x64_sys_recvfrom"],
    ),
    (
        "the runtime letting go of the socket (`epoll_ctl` DEL)",
        &["__x64_sys_epoll_ctl"],
    ),
    (
        "waking and waiting (`futex`, `epoll_wait`, `epoll_pwait`)",
        &[
            "__x64_sys_futex",
            "__x64_sys_epoll_wait",
            "__x64_sys_epoll_pwait",
        ],
    ),
    (
        "memory given back (`munmap`, `madvise`)",
        &["__x64_sys_munmap", "__x64_sys_madvise"],
    ),
    ("other system calls", &["do_syscall_64"]),
];

/// Whether `perf` can be run here.
pub fn perf_found() -> bool {
    Command::new("perf")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `perf record` attached to one process, until [`Recording::finish`].
pub struct Recording {
    child: Child,
    out: PathBuf,
}

impl Recording {
    /// Starts sampling `pid` (all its threads, kernel stacks included).
    pub fn attach(pid: u32, out: &Path) -> Recording {
        let child = Command::new("perf")
            .args(["record", "-g", "-F", &FREQUENCY.to_string(), "-o"])
            .arg(out)
            .args(["-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("perf record starts");
        // perf says nothing when it is ready: give it time to attach.
        std::thread::sleep(Duration::from_millis(1_000));
        Recording {
            child,
            out: out.to_owned(),
        }
    }

    /// Stops sampling (SIGINT, as perf expects) and reads the profile.
    pub fn finish(mut self) -> Profile {
        crate::signal::send(self.child.id(), libc::SIGINT);
        let _ = self.child.wait();
        Profile::read(&self.out)
    }
}

/// One profile: shares of all samples, in percent.
pub struct Profile {
    /// CPU time sampled, ms.
    pub cpu_ms: f64,
    pub kernel: f64,
    pub libc: f64,
    pub program: f64,
    /// Of `program`: stoppable's own functions (not the drops of its
    /// types, which include hyper's).
    pub stoppable: f64,
    /// As [`SYSCALLS`], in order.
    pub syscalls: Vec<f64>,
}

impl Profile {
    fn read(data: &Path) -> Profile {
        let report = |args: &[&str]| -> String {
            let output = Command::new("perf")
                .args(["report", "--stdio", "-g", "none", "-i"])
                .arg(data)
                .args(args)
                .output();
            output.map_or_else(
                |_| String::new(),
                |o| String::from_utf8_lossy(&o.stdout).into_owned(),
            )
        };
        let dsos = report(&["--no-children", "--sort", "dso"]);
        let syms = report(&["--children", "--sort", "sym"]);
        let own = report(&["--no-children", "--sort", "sym"]);
        let dso = |name: &str| share(&dsos, |rest| rest.starts_with(name));
        let sym = |name: &str| share(&syms, |rest| rest.trim_start_matches("[k] ") == name);
        let mut syscalls: Vec<f64> = SYSCALLS
            .iter()
            .map(|(_, entries)| entries.iter().map(|e| sym(e)).sum())
            .collect();
        // The last row is what the others leave of all system calls.
        let named: f64 = syscalls[..SYSCALLS.len() - 1].iter().sum();
        if let Some(other) = syscalls.last_mut() {
            *other = (*other - named).max(0.0);
        }
        let (kernel, libc) = (dso("[kernel"), dso("libc"));
        Profile {
            cpu_ms: cpu_ms(&dsos),
            kernel,
            libc,
            program: 100.0 - kernel - libc,
            stoppable: stoppable_share(&own),
            syscalls,
        }
    }
}

/// The first share (percent, the first column) on a line whose rest
/// matches.
fn share(report: &str, matches: impl Fn(&str) -> bool) -> f64 {
    report
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let mut words = line.split_whitespace();
            let first = words.next()?.strip_suffix('%')?.parse::<f64>().ok()?;
            let rest: Vec<&str> = words.collect();
            // `--children` has two share columns, the symbol after them.
            let rest = match rest.first() {
                Some(w) if w.ends_with('%') => rest[1..].join(" "),
                _ => rest.join(" "),
            };
            matches(&rest).then_some(first)
        })
        .unwrap_or(0.0)
}

/// The self share of stoppable's functions (`stoppable::..`,
/// `stoppable_core::..`, `<stoppable::.. as ..>::..`).
fn stoppable_share(report: &str) -> f64 {
    report
        .lines()
        .filter_map(|line| {
            let (share, symbol) = line.trim_start().split_once("%  [.] ")?;
            let ours = symbol.starts_with("stoppable") || symbol.starts_with("<stoppable");
            ours.then(|| share.parse::<f64>().ok())?
        })
        .fold(0.0, |sum, share| sum + share)
}

/// The CPU time sampled, in ms: perf's event count, in nanoseconds for its
/// software clock (`cpu-clock`, where no hardware counter is there);
/// otherwise the samples at the asked frequency.
fn cpu_ms(report: &str) -> f64 {
    let header = |prefix: &str| report.lines().find_map(|l| l.strip_prefix(prefix));
    let clock = header("# Samples: ").is_some_and(|l| l.contains("clock"));
    let count = header("# Event count (approx.): ")
        .and_then(|c| c.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    if clock {
        return count / 1e6;
    }
    let samples = header("# Samples: ")
        .and_then(|l| l.split_whitespace().next())
        .map_or(0.0, |n| match n.strip_suffix('K') {
            Some(k) => k.parse::<f64>().unwrap_or(0.0) * 1e3,
            None => n.parse::<f64>().unwrap_or(0.0),
        });
    samples * 1e3 / f64::from(FREQUENCY)
}

/// The stop of `CONNECTIONS` idle connections on `runtime`, profiled.
pub async fn stop(bin: &Path, runtime: &str, out: &Path) -> Profile {
    let mut server = Server::start(bin, Side::Stoppable, runtime);
    let conns = idle::open(server.addr, CONNECTIONS, true).await;
    let eof = idle::all_eof(conns);
    let recording = Recording::attach(server.pid(), &out.join("stop.perf"));
    server.terminate();
    let report = tokio::task::spawn_blocking(move || {
        let _ = server.report_line();
        server.wait(Duration::from_secs(10))
    });
    eof.await;
    let _ = report.await;
    recording.finish()
}

/// The floor's close loop of as many connections, profiled.
pub async fn floor(out: &Path) -> Profile {
    let data = out.join("floor.perf");
    let (_, _, recording) =
        idle::floor_with(CONNECTIONS, |pid| Recording::attach(pid, &data)).await;
    recording.finish()
}

/// The two profiles side by side, in markdown.
pub fn markdown(runtime: &str, stop: &Profile, floor: &Profile) -> String {
    let ms = |p: &Profile, share: f64| p.cpu_ms * share / 100.0;
    let mut out = format!(
        "Where the CPU goes: a stop of {CONNECTIONS} idle connections (stoppable, {runtime}) \
         beside the floor's loop closing as many sockets (perf, {FREQUENCY} samples/s; \
         percent of each process's samples, and CPU ms)\n\n\
         | | stop | floor |\n| --- | ---: | ---: |\n"
    );
    let mut row = |what: &str, a: f64, b: f64| {
        out.push_str(&format!(
            "| {what} | {a:.1} % ({:.1} ms) | {b:.1} % ({:.1} ms) |\n",
            ms(stop, a),
            ms(floor, b)
        ));
    };
    row("all", 100.0, 100.0);
    row("kernel", stop.kernel, floor.kernel);
    for (i, (what, _)) in SYSCALLS.iter().enumerate() {
        let at = |p: &Profile| p.syscalls.get(i).copied().unwrap_or(0.0);
        row(&format!("- {what}"), at(stop), at(floor));
    }
    row("C library (the allocator)", stop.libc, floor.libc);
    row("the program's code", stop.program, floor.program);
    row(
        "- stoppable's own functions (the core's decisions, the driver, the slot)",
        stop.stoppable,
        floor.stoppable,
    );
    row(
        "- the runtime, hyper, and dropping each connection's state",
        (stop.program - stop.stoppable).max(0.0),
        (floor.program - floor.stoppable).max(0.0),
    );
    out
}
