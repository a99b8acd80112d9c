//! The servers under test, each its own process: the example server (plain
//! or with stoppable, on a runtime) and the hyper-util peer.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Plain,
    Stoppable,
    Peer,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Plain => "plain",
            Side::Stoppable => "stoppable",
            Side::Peer => "hyper-util peer",
        }
    }
}

pub struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(bin: &Path, side: Side, runtime: &str) -> Server {
        Server::start_with(bin, side, runtime, &[])
    }

    /// Like [`Server::start`], with one glibc malloc arena, for measuring
    /// memory: with one arena per thread, which worker first touches a
    /// connection's memory changes from run to run, and the resident size
    /// per connection with it (by up to 3 KB for one server, two runs).
    pub fn start_one_arena(bin: &Path, side: Side, runtime: &str) -> Server {
        let mut command = Command::new(program(bin, side));
        command.env("MALLOC_ARENA_MAX", "1");
        Server::spawn(command, side, runtime, &[])
    }

    /// Like [`Server::start`], with more command-line arguments.
    pub fn start_with(bin: &Path, side: Side, runtime: &str, args: &[&str]) -> Server {
        Server::spawn(Command::new(program(bin, side)), side, runtime, args)
    }

    /// Like [`Server::start`], under valgrind's cachegrind with no cache
    /// simulation: it counts the instructions the server runs, and writes
    /// their total to `out` when the server exits. On one core, with one
    /// worker thread (every runtime sizes its pool from the cores it may
    /// use): with several, how work spreads over them, and so what it
    /// costs, changes from run to run.
    pub fn start_counted(bin: &Path, side: Side, runtime: &str, out: &Path) -> Server {
        let mut command = Command::new("taskset");
        command
            .args(["--cpu-list", "0", "valgrind"])
            .env("TOKIO_WORKER_THREADS", "1")
            .env("ASYNC_STD_THREAD_COUNT", "1")
            // `STOPPABLE_EXACT_CALLGRIND=1`: callgrind instead, whose
            // output (kept with `STOPPABLE_EXACT_KEEP`) also tells callers.
            .args(match std::env::var_os("STOPPABLE_EXACT_CALLGRIND") {
                Some(_) => vec![
                    "--tool=callgrind".to_owned(),
                    "--dump-instr=yes".to_owned(),
                    format!("--callgrind-out-file={}", out.display()),
                ],
                None => vec![
                    "--tool=cachegrind".to_owned(),
                    "--cache-sim=no".to_owned(),
                    format!("--cachegrind-out-file={}", out.display()),
                ],
            })
            .arg(program(bin, side));
        Server::spawn(command, side, runtime, &[])
    }

    fn spawn(mut command: Command, side: Side, runtime: &str, args: &[&str]) -> Server {
        if side != Side::Peer {
            command.args(["--runtime", runtime, "--addr", "127.0.0.1:0"]);
        }
        if side == Side::Plain {
            command.arg("--plain");
        }
        command.args(args);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("first line");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Server {
            child,
            stdout,
            addr,
        }
    }

    /// Whether every thread of the server sleeps (Linux): nothing runs,
    /// nothing is about to.
    pub fn is_asleep(&self) -> bool {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(tasks)
            .into_iter()
            .flatten()
            .flatten()
            .all(|task| {
                std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
                    // The state follows the command's closing parenthesis.
                    stat.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().next())
                        .is_some_and(|state| state == "S")
                })
            })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM; returns when it was sent. The server (any side)
    /// stops and exits.
    pub fn terminate(&self) -> Instant {
        crate::signal::send(self.child.id(), libc::SIGTERM);
        Instant::now()
    }

    /// The next line on stdout (the stop's report), and when it came.
    pub fn report_line(&mut self) -> (String, Instant) {
        let mut line = String::new();
        let _ = self.stdout.read_line(&mut line);
        (line.trim().to_owned(), Instant::now())
    }

    /// CPU time the server has used so far, over all its threads (Linux
    /// schedstat, nanoseconds): robust to the scheduling noise that
    /// throughput on a shared machine suffers.
    pub fn cpu_time(&self) -> Duration {
        let tasks = format!("/proc/{}/task", self.child.id());
        let nanos: u64 = std::fs::read_dir(tasks)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        Duration::from_nanos(nanos)
    }

    /// Resident memory, and its peak, in bytes (Linux).
    pub fn rss(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Waits for the server to exit, killing it after `timeout`; true when
    /// it exited by itself with status 0.
    pub fn wait(mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

/// The program of a side.
fn program(bin: &Path, side: Side) -> std::path::PathBuf {
    bin.join(match side {
        Side::Peer => "peer",
        _ => "examples/server",
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The milliseconds field of a report line, if any.
pub fn elapsed_ms(report: &str) -> Option<f64> {
    let rest = report.split("\"elapsed_ms\":").nth(1)?;
    rest.trim_end_matches('}')
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()
}
