//! The suite's tokio runtime: a current-thread runtime, so that blocking
//! its one thread holds every task of the server.

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};

use hyper::service::service_fn;

use super::{
    control, drop_channel, run, stop_then_serve, NoSockets, Options, StoppedEarly, TestRuntime,
    TestServer,
};
use crate::app::{App, AppMaker};
use crate::tls;

pub struct Rt;

pub(super) fn app() -> App {
    App::new(Arc::new(|future| {
        tokio::spawn(future);
    }))
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Tasks alive on this runtime besides the control task.
pub(super) fn any_task_left() -> bool {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
        > 1
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
            runtime().block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let addr = listener.local_addr().expect("addr");
                let app = app();
                let service = AppMaker::new(app.clone(), options.panic_on_make);
                let control = tokio::spawn(control(control_rx, any_task_left));
                let served = if options.axum {
                    let router = crate::app::router(app.clone());
                    let app_with_peers = router.into_make_service_with_connect_info::<SocketAddr>();
                    let server = stoppable_tokio::serve(listener, app_with_peers);
                    run(server, options, &app, addr, setup_tx, drop_rx).await
                } else if options.tls {
                    let server =
                        stoppable_tokio::serve_tls(listener, tls::server_config(), service);
                    run(server, options, &app, addr, setup_tx, drop_rx).await
                } else if options.forget_sockets {
                    let listener = NoSockets(stoppable_tokio::Listener(listener));
                    let builder = stoppable_tokio::builder();
                    let tokio = stoppable_tokio::Tokio::default();
                    let server = stoppable::Server::new(listener, service, tokio, builder);
                    run(server, options, &app, addr, setup_tx, drop_rx).await
                } else if let Some((unix, _)) = unix {
                    let unix = tokio::net::UnixListener::from_std(unix).expect("tokio listener");
                    let server = stoppable_tokio::serve((listener, unix), service);
                    run(server, options, &app, addr, setup_tx, drop_rx).await
                } else {
                    let server = stoppable_tokio::serve(listener, service);
                    run(server, options, &app, addr, setup_tx, drop_rx).await
                };
                if let Some(served) = served {
                    let _ = done_tx.send(served);
                }
                // Keep the runtime up for the test's questions until it is done.
                let _ = control.await;
            })
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
            runtime().block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let tracker = stoppable_tokio::tracker(options.to_stoppable()).expect("valid");
                let stopper = tracker.stopper();
                let report = tokio::spawn(super::unless_dropped(tracker.drive(), drop_rx));
                let control = tokio::spawn(control(control_rx, any_task_left));
                let _ = setup_tx.send((listener.local_addr().expect("addr"), stopper.clone()));
                let serve = |stream: tokio::net::TcpStream| {
                    if let Some(conn) = tracker.track_raw(stream) {
                        tokio::spawn(crate::lines::echo_lines_tokio(conn));
                    }
                };
                loop {
                    tokio::select! {
                        biased;
                        () = stopper.draining() => break,
                        accepted = listener.accept() => if let Ok((stream, _)) = accepted { serve(stream) },
                    }
                }
                let mut queued = tracker.drain_listener(stoppable_tokio::Listener(listener));
                while let Some(accepted) = queued.next().await {
                    serve(accepted.io.into_inner());
                }
                if let Some(report) = report.await.expect("drive") {
                    let _ = done_tx.send(Ok(report));
                }
                let _ = control.await;
            })
        });
        TestServer::when_started(setup_rx, done, control_tx, drop_tx, None)
    }

    fn stop_before_first_poll(before: impl FnOnce(std::net::SocketAddr)) -> StoppedEarly {
        runtime().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            before(listener.local_addr().expect("addr"));
            let app = app();
            let service = service_fn(move |req| app.clone().handle(req));
            let server = stoppable_tokio::serve(listener, service);
            let stopper = server.stopper();
            stop_then_serve(server, stopper).await
        })
    }
}
