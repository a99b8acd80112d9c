//! The suite's async-std runtime. async-std has one global executor: the
//! suite runs it on one thread (`ASYNC_STD_THREAD_COUNT=1`), so blocking
//! that thread holds every task. async-std cannot count its tasks, so the
//! server is built from the adapter's parts with a runtime that counts them
//! (`stoppable_async_std::serve` is these same lines; the example server
//! test runs it).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::time::Instant;

use hyper::service::service_fn;
use stoppable::rt::{async_io_builder, AsyncIoListener, AsyncIoSleep};
use stoppable::Runtime;
use stoppable_async_std::AsyncStd;

use super::{
    accept_until_drained, control, drop_channel, run, stop_then_serve, unless_dropped, NoSockets,
    Options, StoppedEarly, TestRuntime, TestServer,
};
use crate::app::{App, AppMaker};
use crate::tls;

pub struct Rt;

/// async-std, counting the tasks it spawns that are still alive.
#[derive(Clone, Default)]
struct Counting(Arc<AtomicUsize>);

struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Runtime for Counting {
    type Sleep = AsyncIoSleep;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) {
        self.0.fetch_add(1, Ordering::SeqCst);
        let alive = Alive(self.0.clone());
        AsyncStd.spawn(async move {
            let _alive = alive;
            future.await;
        });
    }

    fn sleep_until(&self, deadline: Instant) -> AsyncIoSleep {
        AsyncStd.sleep_until(deadline)
    }
}

fn one_executor_thread() {
    static ONCE: Once = Once::new();
    // Before async-std's executor starts, in this process's only setter.
    ONCE.call_once(|| std::env::set_var("ASYNC_STD_THREAD_COUNT", "1"));
}

fn app(runtime: &Counting) -> App {
    let runtime = runtime.clone();
    App::new(Arc::new(move |future| runtime.spawn(future)))
}

impl TestRuntime for Rt {
    fn start(options: Options) -> TestServer {
        one_executor_thread();
        let (setup_tx, setup_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let (control_tx, control_rx) = async_channel::unbounded();
        let (drop_tx, drop_rx) = drop_channel();
        let runtime = Counting::default();
        let tasks = runtime.0.clone();
        // The control task and the server both run on the executor thread.
        async_std::task::spawn(control(control_rx, move || {
            tasks.load(Ordering::SeqCst) > 0
        }));
        let (listener, other_owner) = super::bind(&options);
        let unix = super::bind_unix(&options);
        let (unix_path, unix_other_owner) = super::unix_parts(&unix, &options);
        async_std::task::spawn(async move {
            let addr = listener.local_addr().expect("addr");
            let listener =
                AsyncIoListener(Arc::new(async_io::Async::new(listener).expect("async-io")));
            let app = app(&runtime);
            let service = AppMaker::new(app.clone(), options.panic_on_make);
            let builder = async_io_builder(runtime.clone());
            // The counting runtime, so the suite can see every task: hence
            // `Server` built here rather than with `stoppable_async_std::serve`.
            let served = if options.axum {
                let router = crate::app::router(app.clone());
                let app_with_peers = router.into_make_service_with_connect_info::<SocketAddr>();
                let server = stoppable::Server::new(listener, app_with_peers, runtime, builder);
                run(server, options, &app, addr, setup_tx, drop_rx).await
            } else if options.tls {
                let tls = stoppable::rt::TlsAcceptor::new(tls::server_config());
                let server =
                    stoppable::Server::with_handshake(listener, tls, service, runtime, builder);
                run(server, options, &app, addr, setup_tx, drop_rx).await
            } else if options.forget_sockets {
                let listener = NoSockets(listener);
                let server = stoppable::Server::new(listener, service, runtime, builder);
                run(server, options, &app, addr, setup_tx, drop_rx).await
            } else if let Some((unix, _)) = unix {
                let unix = AsyncIoListener(Arc::new(async_io::Async::new(unix).expect("async-io")));
                let both = stoppable::EitherListener::from((listener, unix));
                let server = stoppable::Server::new(both, service, runtime, builder);
                run(server, options, &app, addr, setup_tx, drop_rx).await
            } else {
                let server = stoppable::Server::new(listener, service, runtime, builder);
                run(server, options, &app, addr, setup_tx, drop_rx).await
            };
            if let Some(served) = served {
                let _ = done_tx.send(served);
            }
        });
        let mut server = TestServer::when_started(setup_rx, done, control_tx, drop_tx, other_owner);
        server.unix = unix_path;
        server.unix_other_owner = unix_other_owner;
        server
    }

    fn start_lines(options: Options) -> TestServer {
        one_executor_thread();
        let (setup_tx, setup_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let (control_tx, control_rx) = async_channel::unbounded();
        let (drop_tx, drop_rx) = drop_channel();
        let runtime = Counting::default();
        let tasks = runtime.0.clone();
        async_std::task::spawn(control(control_rx, move || {
            tasks.load(Ordering::SeqCst) > 0
        }));
        async_std::task::spawn(async move {
            let listener = async_std::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let tracker =
                stoppable::Tracker::new(runtime.clone(), options.to_stoppable()).expect("valid");
            let stopper = tracker.stopper();
            let report = async_std::task::spawn(unless_dropped(tracker.drive(), drop_rx));
            let _ = setup_tx.send((listener.local_addr().expect("addr"), stopper.clone()));
            let serve = |stream: async_io::Async<std::net::TcpStream>| {
                if let Some(conn) = tracker.track_raw(stream) {
                    runtime.spawn(crate::lines::echo_lines(conn));
                }
            };
            let listener = std::net::TcpListener::try_from(listener).expect("std listener");
            let listener = Arc::new(async_io::Async::new(listener).expect("async listener"));
            accept_until_drained(listener, &tracker, serve).await;
            if let Some(report) = report.await {
                let _ = done_tx.send(Ok(report));
            }
        });
        TestServer::when_started(setup_rx, done, control_tx, drop_tx, None)
    }

    fn stop_before_first_poll(before: impl FnOnce(std::net::SocketAddr)) -> StoppedEarly {
        one_executor_thread();
        async_std::task::block_on(async {
            let listener = async_std::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            before(listener.local_addr().expect("addr"));
            let app = app(&Counting::default());
            let service = service_fn(move |req| app.clone().handle(req));
            let server = stoppable_async_std::serve(listener, service).expect("serve");
            let stopper = server.stopper();
            stop_then_serve(server, stopper).await
        })
    }
}
