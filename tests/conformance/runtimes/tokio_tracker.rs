//! The suite on tokio through the lower-level entry: the test's own accept
//! loop, with `stoppable_tokio::tracker` and hyper-util's builder.

use std::sync::mpsc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;

use super::tokio::{any_task_left, app, runtime};
use super::{
    control, drop_channel, unless_dropped, Options, PanicOnClone, TestRuntime, TestServer,
};
use crate::tls;
use stoppable_tokio::TlsAcceptor;

pub struct Rt;

impl TestRuntime for Rt {
    fn start(o: Options) -> TestServer {
        let (setup_tx, setup_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let (control_tx, control_rx) = async_channel::unbounded();
        let (drop_tx, drop_rx) = drop_channel();
        let drop_tx_inner = drop_tx.clone();
        let (listener, other_owner) = super::bind(&o);
        let unix = super::bind_unix(&o);
        let unix_path = unix.as_ref().map(|(_, path)| path.clone());
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let addr = listener.local_addr().expect("addr");
                let tracker = stoppable_tokio::tracker(o.to_stoppable()).expect("valid options");
                let stopper = tracker.stopper();
                let app = app();
                *app.stopper.lock().unwrap() = Some(stopper.clone());
                let control = tokio::spawn(control(control_rx, any_task_left));
                if o.shutdown_future {
                    // A tracker's counterpart of `with_graceful_shutdown`.
                    let (signal, stopper) = (app.shutdown_signal(), stopper.clone());
                    tokio::spawn(async move {
                        signal.await;
                        stopper.request_stop();
                    });
                }
                // The tracker's counterpart of the server future: its drive.
                let report = tokio::spawn(unless_dropped(tracker.drive(), drop_rx));
                let _ = setup_tx.send((addr, stopper.clone()));
                let builder = Builder::new(TokioExecutor::new());
                let acceptor = TlsAcceptor::new(tls::server_config());
                let served = app.clone();
                let service = service_fn(move |req| served.clone().handle(req));
                let service = PanicOnClone::new(service, o.panic_on_clone);
                let serve = |stream: tokio::net::TcpStream| {
                    let socket = match o.forget_sockets {
                        true => None,
                        false => stoppable_tokio::raw_socket(&stream),
                    };
                    // This accept loop is the test's own: a panicking clone
                    // is caught, as a server's task would be, and the drive
                    // dropped (the loop goes on, to drain the listener).
                    let Ok(service) =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| service.clone()))
                    else {
                        drop_tx_inner.try_send(()).ok();
                        return;
                    };
                    if !o.tls {
                        if let Some(conn) = tracker.track(TokioIo::new(stream), socket) {
                            tokio::spawn(conn.serve(service, |io, service| {
                                builder
                                    .serve_connection_with_upgrades(io, service)
                                    .into_owned()
                            }));
                        }
                        return;
                    }
                    let handshake = acceptor.accept(stream);
                    if let Some(handshaking) = tracker.track_handshake(handshake, socket) {
                        let builder = builder.clone();
                        tokio::spawn(async move {
                            if let Some(conn) = handshaking.await {
                                let driver = conn.serve(service, |io, service| {
                                    builder
                                        .serve_connection_with_upgrades(io, service)
                                        .into_owned()
                                });
                                driver.await;
                            }
                        });
                    }
                };
                // Unix connections: served as TCP ones, without TLS.
                let serve_unix = |stream: tokio::net::UnixStream| {
                    let socket = Some(stoppable::raw_socket(&stream));
                    if let Some(conn) = tracker.track(TokioIo::new(stream), socket) {
                        tokio::spawn(conn.serve(service.clone(), |io, service| {
                            builder
                                .serve_connection_with_upgrades(io, service)
                                .into_owned()
                        }));
                    }
                };
                let unix = unix.map(|(unix, _)| {
                    tokio::net::UnixListener::from_std(unix).expect("tokio listener")
                });
                let accept_unix = || async {
                    match &unix {
                        Some(unix) => unix.accept().await.map(|(stream, _)| stream),
                        None => std::future::pending().await,
                    }
                };
                loop {
                    // A limit of its own, as a tracker's user holds one.
                    if let Some(limit) = o.max_connections {
                        tokio::select! {
                            () = stopper.room_below(limit) => {}
                            () = stopper.draining() => break,
                        }
                    }
                    tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => serve(stream),
                            Err(_) => continue,
                        },
                        accepted = accept_unix() => if let Ok(stream) = accepted {
                            serve_unix(stream);
                        },
                        () = stopper.draining() => break,
                    }
                }
                // Both listeners under one drain: the stop waits for both.
                let listeners = stoppable::EitherListener::from((
                    stoppable_tokio::Listener(listener),
                    unix.map(stoppable_tokio::UnixListener),
                ));
                let mut queued = tracker.drain_listener(listeners);
                if o.shared_listener {
                    queued = queued.shared();
                }
                while let Some(accepted) = queued.next().await {
                    match accepted.io {
                        stoppable::EitherIo::Left(io) => serve(io.into_inner()),
                        stoppable::EitherIo::Right(io) => serve_unix(io.into_inner()),
                    }
                }
                if let Some(report) = report.await.expect("drive ends") {
                    let _ = done_tx.send(Ok(report));
                }
                let _ = control.await;
            })
        });
        let mut server = TestServer::when_started(setup_rx, done, control_tx, drop_tx, other_owner);
        server.unix = unix_path;
        server
    }

    fn start_lines(options: Options) -> TestServer {
        super::tokio::Rt::start_lines(options)
    }

    fn stop_before_first_poll(before: impl FnOnce(std::net::SocketAddr)) -> super::StoppedEarly {
        runtime().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            before(addr);
            let tracker = stoppable_tokio::tracker(stoppable::Options::default()).expect("valid");
            let stopping = tracker.stopper().stop();
            let drive = tokio::spawn(tracker.drive());
            let builder = Builder::new(TokioExecutor::new());
            let app = app();
            // The drain began before the accept loop ran: only the queue is served.
            while let Some(stream) = stoppable_tokio::try_accept(&listener) {
                let socket = stoppable_tokio::raw_socket(&stream);
                let conn = tracker
                    .track(TokioIo::new(stream), socket)
                    .expect("tracked");
                let app = app.clone();
                let service = service_fn(move |req| app.clone().handle(req));
                tokio::spawn(conn.serve(service, |io, service| {
                    builder
                        .serve_connection_with_upgrades(io, service)
                        .into_owned()
                }));
            }
            drop(listener);
            tracker.listener_closed();
            let served = drive.await.expect("drive");
            // B2: a tracker whose listener closed tracks nothing more.
            let late = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let _client = std::net::TcpStream::connect(late.local_addr().unwrap()).unwrap();
            let stream = tokio::net::TcpStream::from_std({
                let (s, _) = late.accept().unwrap();
                s.set_nonblocking(true).unwrap();
                s
            })
            .unwrap();
            let again = match tracker.track(TokioIo::new(stream), None) {
                Some(_) => Ok(served),
                None => Err(stoppable::Error::Stopped),
            };
            (Ok(served), stopping.await, again)
        })
    }
}
