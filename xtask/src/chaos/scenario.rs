//! One stop of the campaign, drawn from a seed: the server's options, how
//! the stop comes, and the clients. The same seed draws the same scenario.

use std::fmt;

/// SplitMix64: small, fast, and the same on every machine.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// How the stop comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopBy {
    /// SIGTERM (the server's grace).
    Signal,
    /// `Stopper::stop` or `stop_within(grace)`, from another thread.
    Call,
    /// `POST /shutdown`, from inside a handler (the server's grace).
    Handler,
    /// The server future is dropped first, then `stop`/`stop_within`.
    DropThenCall,
}

/// One client: what it does on its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// HTTP/1.1 requests: keep-alive reuse or a new connection each time,
    /// two pipelined at once or one by one.
    Http1 { reuse: bool, pipeline: bool },
    /// hyper's HTTP/2 client, streams in parallel; with `pings` it pings
    /// every 50 ms and tunes its window (PING, WINDOW_UPDATE, SETTINGS).
    Http2 { pings: bool },
    /// HTTP/2 that answers no PING (so no GOAWAY's) and never closes;
    /// `hostile`, it opens streams after the GOAWAY too.
    Http2Mute { hostile: bool },
    /// Part of a head, the rest `rest_after` ms later, or never.
    SlowHead { rest_after: Option<u64> },
    /// A request whose answer it never reads (32 MiB echoed): grace only.
    NeverRead,
    /// A request that outlasts any grace: grace only.
    Hang,
    /// Resets mid-head, after a request, mid-response; half-closes.
    Fault,
    /// A WebSocket: echoes, then the server's close frame at the drain.
    WebSocket,
    /// Server-sent events: `event: bye` at the drain.
    Sse,
    /// The line protocol (B20): lines, some held half-sent `hold` ms.
    Lines { hold: u64 },
    /// New connections whose first request comes up to `max_after` ms
    /// after the connect (B1, B4): within the first-request window it is
    /// served; under `TCP_DEFER_ACCEPT` the server's kernel holds the
    /// handshake until then (`deferred`).
    LateStart { max_after: u64, deferred: bool },
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub runtime: &'static str,
    pub grace: Option<u64>,
    pub delay: u64,
    pub header_timeout: u64,
    pub window: u64,
    pub goaway: u64,
    pub tls: bool,
    pub stop_by: StopBy,
    /// When the stop comes, after the clients start (ms).
    pub stop_after: u64,
    pub clients: Vec<Client>,
    /// B23: connections' maximum age while serving (ms), if any.
    pub max_age: Option<u64>,
    /// B23: clients asked to move on during the readiness delay.
    pub move_on: bool,
    /// While serving: hyper's header-read timeout and the first-request
    /// timeout (ms), if drawn: slow heads and idle keep-alive connections
    /// are cut while serving and during the stop, and the report must
    /// count a head they cut during the stop (B11).
    pub serving_timeout: Option<u64>,
    /// The listener takes a handshake's end only with the client's first
    /// bytes (`TCP_DEFER_ACCEPT`): connects under way at the stop (B1).
    pub defer_accept: bool,
}

impl Scenario {
    pub fn draw(seed: u64, runtime: &'static str) -> Scenario {
        let mut rng = Rng::new(seed);
        let grace = match rng.range(0, 9) {
            0..=3 => None,
            4..=6 => Some(rng.range(100, 400)),
            _ => Some(rng.range(500, 1500)),
        };
        let header_timeout = rng.range(200, 1000);
        // Now and then past the header-read timeout (B21).
        let delay = match rng.range(0, 9) {
            0..=3 => 0,
            _ => rng.range(50, header_timeout + 500),
        };
        let stop_by = match rng.range(0, 3) {
            0 => StopBy::Signal,
            1 => StopBy::Call,
            2 => StopBy::Handler,
            _ => StopBy::DropThenCall,
        };
        let mut scenario = Scenario {
            seed,
            runtime,
            grace,
            delay,
            header_timeout,
            window: rng.range(50, 400),
            goaway: rng.range(200, 600),
            tls: rng.chance(30),
            stop_by,
            stop_after: rng.range(50, 300),
            clients: Vec::new(),
            max_age: None,
            move_on: false,
            serving_timeout: None,
            defer_accept: false,
        };
        let clients = &mut scenario.clients;
        let r = &mut rng;
        some(clients, r, 4, 14, |r| Client::Http1 {
            reuse: r.chance(60),
            pipeline: r.chance(20),
        });
        some(clients, r, 1, 6, |r| Client::Http2 {
            pings: r.chance(50),
        });
        some(clients, r, 0, 2, |r| Client::Http2Mute {
            hostile: r.chance(30),
        });
        some(clients, r, 0, 3, |r| Client::SlowHead {
            rest_after: r.chance(50).then(|| r.range(10, 400)),
        });
        if grace.is_some() {
            some(clients, r, 0, 2, |_| Client::NeverRead);
            some(clients, r, 0, 2, |_| Client::Hang);
        }
        some(clients, r, 0, 3, |_| Client::Fault);
        some(clients, r, 0, 2, |_| Client::WebSocket);
        some(clients, r, 0, 2, |_| Client::Sse);
        some(clients, r, 0, 5, |r| Client::Lines {
            hold: r.range(0, 400),
        });
        // B23's options from a stream of their own: the draws above stay
        // those of the seeds printed before they existed.
        let mut b23 = Rng::new(seed ^ 0xb23b_23b2_3b23_b23b);
        scenario.max_age = b23.chance(40).then(|| b23.range(30, 400));
        scenario.move_on = delay > 0 && b23.chance(50);
        // The serving timeouts from a third stream, for the same reason.
        let mut serving = Rng::new(seed ^ 0x5e7f_1e57_0e0f_5e7f);
        scenario.serving_timeout = serving.chance(35).then(|| serving.range(100, 800));
        // Late first requests and deferred accepts from a fourth.
        let mut late = Rng::new(seed ^ 0x1a7e_57a2_71a7_e57a);
        scenario.defer_accept = late.chance(40);
        let max_after = scenario.window + 200;
        let deferred = scenario.defer_accept;
        some(&mut scenario.clients, &mut late, 0, 3, |_| {
            Client::LateStart {
                max_after,
                deferred,
            }
        });
        scenario
    }

    /// The chaos server's command line for this scenario.
    pub fn server_args(&self) -> Vec<String> {
        let mut args = vec![
            "--runtime".to_owned(),
            self.runtime.to_owned(),
            "--drain-delay-ms".to_owned(),
            self.delay.to_string(),
            "--header-read-timeout-ms".to_owned(),
            self.header_timeout.to_string(),
            "--first-request-window-ms".to_owned(),
            self.window.to_string(),
            "--goaway-timeout-ms".to_owned(),
            self.goaway.to_string(),
        ];
        if let Some(age) = self.max_age {
            args.extend(["--max-connection-age-ms".to_owned(), age.to_string()]);
        }
        if self.move_on {
            args.push("--move-on".to_owned());
        }
        if let Some(timeout) = self.serving_timeout {
            args.extend(["--serving-timeout-ms".to_owned(), timeout.to_string()]);
        }
        if self.defer_accept {
            args.push("--defer-accept".to_owned());
        }
        // The server's own grace, unless the stop call brings it.
        let server_grace = matches!(self.stop_by, StopBy::Signal | StopBy::Handler);
        if let (Some(grace), true) = (self.grace, server_grace) {
            args.extend(["--grace-ms".to_owned(), grace.to_string()]);
        }
        args
    }
}

/// Between `lo` and `hi` clients made by `make`.
fn some(
    clients: &mut Vec<Client>,
    rng: &mut Rng,
    lo: u64,
    hi: u64,
    mut make: impl FnMut(&mut Rng) -> Client,
) {
    for _ in 0..rng.range(lo, hi) {
        let client = make(rng);
        clients.push(client);
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let grace = self.grace.map_or("none".to_owned(), |g| format!("{g} ms"));
        write!(
            f,
            "seed {} on {}: grace {grace}, delay {} ms{}, header-read {} ms, window {} ms, goaway {} ms, max age {}, serving timeouts {}, tls {}, defer accept {}, stop by {:?} after {} ms; clients {:?}",
            self.seed,
            self.runtime,
            self.delay,
            if self.move_on { " (clients move on)" } else { "" },
            self.header_timeout,
            self.window,
            self.goaway,
            self.max_age.map_or("none".to_owned(), |a| format!("{a} ms")),
            self.serving_timeout
                .map_or("none".to_owned(), |t| format!("{t} ms")),
            self.tls,
            self.defer_accept,
            self.stop_by,
            self.stop_after,
            self.clients
        )
    }
}
