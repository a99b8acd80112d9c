//! Project chores, run as `cargo xtask <task>`.

mod bench;
mod chaos;
mod http1;
mod signal;
mod stress;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task> [options]   (--help after any task: this text)

tasks:
  bench [--quick]   stoppable against plain hyper and hyper-util's GracefulShutdown,
                    on tokio, smol and async-std; markdown on stdout, JSON in
                    target/bench/latest.json (--quick: a short smoke run)
  bench --exact [--runtime R] [--protocol http1|http2] [--side plain|stoppable|peer]
                    instructions per request, counted by valgrind, twice each
                    (the filters measure one figure again)
  bench --profile-stop [--runtime R]
                    where the CPU of a stop of 10,000 idle connections goes,
                    beside the floor's close loop (perf)
  stress [--stops N] [--growth N] [--churn N]
                    N stops per runtime (default 100) under 200 clients; every
                    request classified; fails if any was lost; then connections
                    churned during a stop (default 10,000), the grace under
                    stuck work, memory over short connections (default 20,000)
  stress --handoff N [--runtime R]
                    the listening socket handed from process to process N
                    times under load (examples/restart.rs); fails on any
                    refused or timed-out connect, lost request or bad handoff
  stress --rollout N [--runtime R]
                    a rolling update behind HAProxy (installed from Debian's
                    packages when missing): three example servers, N replaced
                    one by one under load; fails if any request through the
                    balancer fails with the readiness delay; the same run
                    without it gives figures
  stress --chaos N [--seed S | --replay STOP_SEED] [--runtime R] [--only I,J,..]
                    a randomized campaign: N stops per runtime, each with
                    options, a stop method and clients drawn from the seed,
                    judged by an oracle from the clients' side; --only keeps
                    those clients of each drawn stop (to replay a shrunk one);
                    --replay runs the one stop a failure printed, N times
  help              this text

R is tokio, smol or async-std.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match args.first().map(String::as_str) {
        None | Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("bench") => bench::run(&args[1..]),
        Some("stress") => stress::run(&args[1..]),
        // The floor's helper process (see bench::idle).
        Some("floor-serve") => match args.get(1).and_then(|n| n.parse().ok()) {
            Some(n) => {
                bench::floor_serve(n);
                ExitCode::SUCCESS
            }
            None => ExitCode::from(2),
        },
        Some(other) => {
            eprintln!("xtask: unknown task `{other}`\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
