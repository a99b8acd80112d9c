//! The figures of one bench run: a markdown table (ratios first) and JSON.

use std::fmt::Write;

use super::load::Load;
use super::process::Side;
use super::svg::{self, Series};

#[derive(Default)]
pub struct Results {
    pub load: Vec<LoadRow>,
    pub stops: Vec<StopRow>,
    /// Stops of a server under load (clients asking without pause).
    pub loaded: Vec<StopRow>,
    pub memory: Vec<Memory>,
    /// Heap allocations per request.
    pub allocs: Vec<Counted>,
    /// Heap bytes held per idle connection.
    pub held: Vec<Counted>,
    pub machine: String,
    pub quick: bool,
    pub seconds: f64,
}

/// One side's rounds under one load.
pub struct LoadRow {
    pub runtime: String,
    pub protocol: &'static str,
    pub conns: usize,
    pub side: Side,
    pub rps: Vec<f64>,
    pub p50_us: Vec<f64>,
    pub p99_us: Vec<f64>,
    pub max_us: Vec<f64>,
    /// Server CPU time per request, in microseconds.
    pub cpu_us: Vec<f64>,
    pub errors: u64,
}

impl LoadRow {
    pub fn new(runtime: &str, protocol: &'static str, conns: usize, side: Side) -> Self {
        LoadRow {
            runtime: runtime.to_owned(),
            protocol,
            conns,
            side,
            rps: Vec::new(),
            p50_us: Vec::new(),
            p99_us: Vec::new(),
            max_us: Vec::new(),
            cpu_us: Vec::new(),
            errors: 0,
        }
    }

    pub fn push(&mut self, load: &Load, cpu: std::time::Duration) {
        self.cpu_us
            .push(cpu.as_secs_f64() * 1e6 / load.total.max(1) as f64);
        self.rps.push(load.rps());
        self.p50_us.push(load.latency.value_at_quantile(0.5) as f64);
        self.p99_us
            .push(load.latency.value_at_quantile(0.99) as f64);
        self.max_us.push(load.latency.max() as f64);
        self.errors += load.errors;
    }
}

pub struct StopRow {
    pub who: String,
    pub n: usize,
    /// For the floor: the close loop itself.
    pub to_report_ms: f64,
    pub to_all_eof_ms: f64,
    /// When each client saw its connection end (EOF; under load, a
    /// `Connection: close` response or a close), in ms after the signal
    /// (for the pictures; not in the JSON).
    pub closes_ms: Vec<f64>,
}

pub struct Memory {
    pub runtime: String,
    pub side: Side,
    pub n: usize,
    pub per_conn_bytes: f64,
    pub peak_bytes: u64,
}

/// A figure from a counting-allocator bench: one runtime, one side.
pub struct Counted {
    pub runtime: String,
    pub side: String,
    pub value: f64,
}

/// A table of counted figures: each runtime's plain, stoppable and added,
/// with `decimals`, and whether the added figure meets the target (`ok`,
/// also pushed to `targets`).
fn counted_table(
    out: &mut String,
    targets: &mut Vec<bool>,
    title: &str,
    header: &str,
    figures: &[Counted],
    decimals: usize,
    ok: fn(f64) -> bool,
) {
    let _ = writeln!(out, "\n### {title}\n");
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
    for (plain, ours) in pairs(figures) {
        let added = ours.value - plain.value;
        let met = ok(added);
        targets.push(met);
        let _ = writeln!(
            out,
            "| {} | {:.decimals$} | {:.decimals$} | {added:.decimals$} | {} |",
            plain.runtime,
            plain.value,
            ours.value,
            verdict(met)
        );
    }
}

/// Each runtime's plain and stoppable figures, side by side.
fn pairs(figures: &[Counted]) -> impl Iterator<Item = (&Counted, &Counted)> {
    figures
        .iter()
        .filter(|c| c.side == "plain")
        .filter_map(|plain| {
            let ours = figures
                .iter()
                .find(|c| c.side == "stoppable" && c.runtime == plain.runtime)?;
            Some((plain, ours))
        })
}

impl StopRow {
    /// A row from when each client saw its connection end: the last of
    /// them is the column's figure.
    pub fn new(who: String, n: usize, to_report_ms: f64, closes_ms: Vec<f64>) -> Self {
        StopRow {
            who,
            n,
            to_report_ms,
            to_all_eof_ms: closes_ms.iter().copied().fold(0.0, f64::max),
            closes_ms,
        }
    }
}

impl Results {
    /// Throughput per load, plain beside stoppable and the peer (the
    /// median of the rounds): a picture.
    pub fn throughput_svg(&self) -> String {
        let sides = [Side::Plain, Side::Stoppable, Side::Peer];
        let mut labels = Vec::new();
        let mut series: Vec<Series<Vec<Option<f64>>>> = sides
            .iter()
            .map(|side| Series {
                name: side.name().to_owned(),
                values: Vec::new(),
            })
            .collect();
        for plain in self.load.iter().filter(|r| r.side == Side::Plain) {
            labels.push(format!(
                "{} {} ×{}",
                plain.runtime, plain.protocol, plain.conns
            ));
            for (s, side) in series.iter_mut().zip(sides) {
                let row = self.load.iter().find(|r| {
                    r.side == side
                        && r.runtime == plain.runtime
                        && r.protocol == plain.protocol
                        && r.conns == plain.conns
                });
                s.values.push(row.map(|r| median(&r.rps)));
            }
        }
        svg::bars(
            "Requests per second (median of the rounds; wall clock, ±15–30 % noise)",
            "requests per second: more is better (runtime, protocol, ×connections)",
            &labels,
            &series,
        )
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Median, min and max of the round-by-round ratios `a / b`.
fn ratios(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    let min = r.iter().copied().fold(f64::INFINITY, f64::min);
    let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(&r), min, max)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

impl Results {
    fn find(&self, runtime: &str, protocol: &str, conns: usize, side: Side) -> Option<&LoadRow> {
        self.load.iter().find(|r| {
            r.runtime == runtime && r.protocol == protocol && r.conns == conns && r.side == side
        })
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## Benchmark ({}{})\n",
            self.machine,
            if self.quick { ", --quick" } else { "" }
        );
        let _ = writeln!(
            out,
            "### stoppable / plain (median of paired rounds, [min–max])\n"
        );
        let _ = writeln!(
            out,
            "| runtime | load | conns | throughput | p99 latency | target (≥ 0.99, ≤ 1.05) | server CPU per request |"
        );
        let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- | --- |");
        let mut targets = Vec::new();
        for row in self.load.iter().filter(|r| r.side == Side::Stoppable) {
            let Some(plain) = self.find(&row.runtime, row.protocol, row.conns, Side::Plain) else {
                continue;
            };
            let (t, tmin, tmax) = ratios(&row.rps, &plain.rps);
            let (l, lmin, lmax) = ratios(&row.p99_us, &plain.p99_us);
            let (c, cmin, cmax) = ratios(&row.cpu_us, &plain.cpu_us);
            let ok = t >= 0.99 && l <= 1.05;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {t:.3} [{tmin:.3}–{tmax:.3}] | {l:.3} [{lmin:.3}–{lmax:.3}] | {} | {c:.3} [{cmin:.3}–{cmax:.3}] |",
                row.runtime, row.protocol, row.conns, verdict(ok)
            );
            targets.push(ok);
        }
        let _ = writeln!(out, "\n### Absolute figures (medians over rounds)\n");
        let _ = writeln!(
            out,
            "| runtime | load | conns | side | req/s | p50 µs | p99 µs | max µs | CPU µs/req | errors |"
        );
        let _ = writeln!(
            out,
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for r in &self.load {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {} |",
                r.runtime,
                r.protocol,
                r.conns,
                r.side.name(),
                median(&r.rps),
                median(&r.p50_us),
                median(&r.p99_us),
                median(&r.max_us),
                median(&r.cpu_us),
                r.errors
            );
        }
        let _ = writeln!(
            out,
            "\n### Against the peer (stoppable-tokio / hyper-util GracefulShutdown)\n"
        );
        let _ = writeln!(
            out,
            "| load | conns | throughput | p99 latency | at least as good | server CPU per request |"
        );
        let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
        for peer in self.load.iter().filter(|r| r.side == Side::Peer) {
            if let Some(ours) = self.find("tokio", peer.protocol, peer.conns, Side::Stoppable) {
                let (t, tmin, tmax) = ratios(&ours.rps, &peer.rps);
                let (l, lmin, lmax) = ratios(&ours.p99_us, &peer.p99_us);
                let (c, cmin, cmax) = ratios(&ours.cpu_us, &peer.cpu_us);
                let ok = t >= 0.99 && l <= 1.05;
                let _ = writeln!(
                    out,
                    "| {} | {} | {t:.3} [{tmin:.3}–{tmax:.3}] | {l:.3} [{lmin:.3}–{lmax:.3}] | {} | {c:.3} [{cmin:.3}–{cmax:.3}] |",
                    peer.protocol, peer.conns, verdict(ok)
                );
                targets.push(ok);
            }
        }
        let _ = writeln!(out, "\n### Stop with N idle keep-alive connections\n");
        let _ = writeln!(out, "| who | N | signal → report ms | signal → every client at EOF ms | < 100 ms at 10,000 | ≤ 2× floor |");
        let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
        for row in &self.stops {
            let floor = self
                .stops
                .iter()
                .find(|f| f.n == row.n && f.who.starts_with("floor"))
                .map_or(f64::NAN, |f| f.to_all_eof_ms);
            let (fast, near_floor) = if row.who.starts_with("stoppable") && row.n >= 10_000 {
                let fast = row.to_all_eof_ms < 100.0;
                let near = row.to_all_eof_ms <= 2.0 * floor;
                targets.push(fast);
                targets.push(near);
                (verdict(fast), verdict(near))
            } else if row.who.starts_with("floor") {
                ("(column 3: the close loop)", "")
            } else {
                ("", "")
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} | {fast} | {near_floor} |",
                row.who, row.n, row.to_report_ms, row.to_all_eof_ms
            );
        }
        let _ = writeln!(out, "\n### Stop of a server under load\n");
        let _ = writeln!(out, "| who | N HTTP/1.1 connections asking without pause | signal → report ms | signal → every client told to close, or closed, ms |");
        let _ = writeln!(out, "| --- | --- | --- | --- |");
        for row in &self.loaded {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} |",
                row.who, row.n, row.to_report_ms, row.to_all_eof_ms
            );
        }
        let _ = writeln!(out, "\n### Memory held per idle connection\n");
        let _ = writeln!(
            out,
            "| runtime | N | plain B/conn | stoppable B/conn | added B/conn | target (≤ 256) |"
        );
        let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
        for plain in self.memory.iter().filter(|m| m.side == Side::Plain) {
            if let Some(ours) = self
                .memory
                .iter()
                .find(|m| m.side == Side::Stoppable && m.runtime == plain.runtime)
            {
                let added = ours.per_conn_bytes - plain.per_conn_bytes;
                let ok = added <= 256.0;
                targets.push(ok);
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.0} | {added:.0} | {} |",
                    plain.runtime,
                    plain.n,
                    plain.per_conn_bytes,
                    ours.per_conn_bytes,
                    verdict(ok)
                );
            }
        }
        counted_table(
            &mut out,
            &mut targets,
            "Heap allocations per request (counting allocator, in-process)",
            "| runtime | plain | stoppable | added | target (0) |",
            &self.allocs,
            2,
            |added| added < 0.01,
        );
        counted_table(
            &mut out,
            &mut targets,
            "Heap bytes held per idle connection (counting allocator, in-process)",
            "| runtime | plain B/conn | stoppable B/conn | added B/conn | target (≤ 256) |",
            &self.held,
            0,
            |added| added <= 256.0,
        );
        let met = targets.iter().filter(|t| **t).count();
        let _ = writeln!(
            out,
            "\n{met} of {} targets met; run took {:.0} s.",
            targets.len(),
            self.seconds
        );
        out
    }

    pub fn json(&self) -> String {
        let list = |v: &[f64]| {
            let items: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
            format!("[{}]", items.join(","))
        };
        let mut parts = Vec::new();
        for r in &self.load {
            parts.push(format!(
                r#"{{"runtime":"{}","protocol":"{}","conns":{},"side":"{}","rps":{},"p50_us":{},"p99_us":{},"max_us":{},"cpu_us_per_request":{},"errors":{}}}"#,
                r.runtime,
                r.protocol,
                r.conns,
                r.side.name(),
                list(&r.rps),
                list(&r.p50_us),
                list(&r.p99_us),
                list(&r.max_us),
                list(&r.cpu_us),
                r.errors
            ));
        }
        let stop_json = |rows: &[StopRow]| -> Vec<String> {
            rows.iter()
                .map(|s| {
                    format!(
                        r#"{{"who":"{}","n":{},"to_report_ms":{:.3},"to_all_eof_ms":{:.3}}}"#,
                        s.who, s.n, s.to_report_ms, s.to_all_eof_ms
                    )
                })
                .collect()
        };
        let stops = stop_json(&self.stops);
        let loaded = stop_json(&self.loaded);
        let memory: Vec<String> = self
            .memory
            .iter()
            .map(|m| {
                format!(
                    r#"{{"runtime":"{}","side":"{}","n":{},"per_conn_bytes":{:.1},"peak_bytes":{}}}"#,
                    m.runtime,
                    m.side.name(),
                    m.n,
                    m.per_conn_bytes,
                    m.peak_bytes
                )
            })
            .collect();
        let counted = |figures: &[Counted], name: &str| -> String {
            let items: Vec<String> = figures
                .iter()
                .map(|c| {
                    format!(
                        r#"{{"runtime":"{}","side":"{}","{name}":{:.4}}}"#,
                        c.runtime, c.side, c.value
                    )
                })
                .collect();
            items.join(",")
        };
        format!(
            "{{\"machine\":\"{}\",\"quick\":{},\"seconds\":{:.1},\"load\":[{}],\"stops\":[{}],\"loaded\":[{}],\"memory\":[{}],\"allocs\":[{}],\"held\":[{}]}}\n",
            self.machine,
            self.quick,
            self.seconds,
            parts.join(","),
            stops.join(","),
            loaded.join(","),
            memory.join(","),
            counted(&self.allocs, "per_request"),
            counted(&self.held, "per_conn_bytes")
        )
    }
}
