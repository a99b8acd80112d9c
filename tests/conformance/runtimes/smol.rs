//! The suite's smol runtime: the server's own executor and the control
//! task's, both run on one thread, so blocking it holds every task.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};

use hyper::service::service_fn;
use smol::{Executor, LocalExecutor};
use stoppable::rt::{async_io_builder, AsyncIoListener};

use super::{
    accept_until_drained, control, drop_channel, run, stop_then_serve, unless_dropped, NoSockets,
    Options, StoppedEarly, TestRuntime, TestServer,
};
use crate::app::{App, AppMaker};
use crate::tls;

pub struct Rt;

fn app(executor: &Arc<Executor<'static>>) -> App {
    let executor = executor.clone();
    App::new(Arc::new(move |future| executor.spawn(future).detach()))
}

impl TestRuntime for Rt {
    fn start(options: Options) -> TestServer {
        let (setup_tx, setup_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let (control_tx, control_rx) = async_channel::unbounded();
        let (drop_tx, drop_rx) = drop_channel();
        let (listener, other_owner) = super::bind(&options);
        let unix = super::bind_unix(&options);
        let (unix_path, unix_other_owner) = super::unix_parts(&unix, &options);
        std::thread::spawn(move || {
            let executor = Arc::new(Executor::new());
            let local = LocalExecutor::new();
            let tasks = executor.clone();
            let control = local.spawn(control(control_rx, move || !tasks.is_empty()));
            let main = async {
                let listener = smol::net::TcpListener::try_from(listener).expect("smol listener");
                let addr = listener.local_addr().expect("addr");
                let app = app(&executor);
                let service = AppMaker::new(app.clone(), options.panic_on_make);
                let executor = executor.clone();
                let served = if options.axum {
                    let router = crate::app::router(app.clone());
                    let app_with_peers = router.into_make_service_with_connect_info::<SocketAddr>();
                    let server = stoppable_smol::serve_on(executor, listener, app_with_peers);
                    run(server, options, &app, addr, setup_tx, drop_rx).await
                } else if options.tls {
                    let config = tls::server_config();
                    let server = stoppable_smol::serve_tls_on(executor, listener, config, service);
                    run(server, options, &app, addr, setup_tx, drop_rx).await
                } else if options.forget_sockets {
                    let runtime = stoppable_smol::Smol::on(executor);
                    let listener = NoSockets(AsyncIoListener(listener.into()));
                    let builder = async_io_builder(runtime.clone());
                    let server = stoppable::Server::new(listener, service, runtime, builder);
                    run(server, options, &app, addr, setup_tx, drop_rx).await
                } else if let Some((unix, _)) = unix {
                    let unix =
                        smol::net::unix::UnixListener::try_from(unix).expect("smol listener");
                    let server = stoppable_smol::serve_on(executor, (listener, unix), service);
                    run(server, options, &app, addr, setup_tx, drop_rx).await
                } else {
                    let server = stoppable_smol::serve_on(executor, listener, service);
                    run(server, options, &app, addr, setup_tx, drop_rx).await
                };
                if let Some(served) = served {
                    let _ = done_tx.send(served);
                }
                control.await;
            };
            smol::block_on(local.run(executor.run(main)));
        });
        let mut server = TestServer::when_started(setup_rx, done, control_tx, drop_tx, other_owner);
        server.unix = unix_path;
        server.unix_other_owner = unix_other_owner;
        server
    }

    fn start_lines(options: Options) -> TestServer {
        let (setup_tx, setup_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let (control_tx, control_rx) = async_channel::unbounded();
        let (drop_tx, drop_rx) = drop_channel();
        std::thread::spawn(move || {
            let executor = Arc::new(Executor::new());
            let local = LocalExecutor::new();
            let tasks = executor.clone();
            let control = local.spawn(control(control_rx, move || !tasks.is_empty()));
            let main = async {
                let listener = smol::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let runtime = stoppable_smol::Smol::on(executor.clone());
                let tracker =
                    stoppable_smol::tracker(runtime, options.to_stoppable()).expect("valid");
                let stopper = tracker.stopper();
                let report = executor.spawn(unless_dropped(tracker.drive(), drop_rx));
                let _ = setup_tx.send((listener.local_addr().expect("addr"), stopper.clone()));
                let serve = |stream: async_io::Async<std::net::TcpStream>| {
                    if let Some(conn) = tracker.track_raw(stream) {
                        executor.spawn(crate::lines::echo_lines(conn)).detach();
                    }
                };
                accept_until_drained(listener.into(), &tracker, serve).await;
                if let Some(report) = report.await {
                    let _ = done_tx.send(Ok(report));
                }
                control.await;
            };
            smol::block_on(local.run(executor.run(main)));
        });
        TestServer::when_started(setup_rx, done, control_tx, drop_tx, None)
    }

    fn stop_before_first_poll(before: impl FnOnce(std::net::SocketAddr)) -> StoppedEarly {
        smol::block_on(async {
            let listener = smol::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            before(listener.local_addr().expect("addr"));
            let app = app(&Arc::new(Executor::new()));
            let service = service_fn(move |req| app.clone().handle(req));
            let server = stoppable_smol::serve(listener, service);
            let stopper = server.stopper();
            stop_then_serve(server, stopper).await
        })
    }
}
