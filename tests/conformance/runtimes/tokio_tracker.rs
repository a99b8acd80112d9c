//! The suite on tokio through the lower-level entry: the test's own accept
//! loop, with `stoppable_tokio::tracker` and hyper-util's builder.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{mpsc, Arc};

use hyper::body::Incoming;
use hyper::{Request, Response};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;

use super::tokio::{any_task_left, app, runtime};
use super::{control, drop_channel, unless_dropped, Options, TestRuntime, TestServer};
use crate::app::{App, AppMaker};
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
        let (unix_path, unix_other_owner) = super::unix_parts(&unix, &o);
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let addr = listener.local_addr().expect("addr");
                let mut tracker =
                    stoppable_tokio::tracker(o.to_stoppable()).expect("valid options");
                let stopper = tracker.stopper();
                let app = app();
                *app.stopper.lock().unwrap() = Some(stopper.clone());
                let errors = app.clone();
                tracker.on_connection_error(move |e| errors.record_error(e));
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
                let mut builder = stoppable_tokio::builder();
                if let Some(timeout) = o.serving_header_timeout {
                    builder.http1().header_read_timeout(timeout);
                }
                let acceptor = TlsAcceptor::new(tls::server_config());
                let make = maker(&o, &app);
                let serve = |stream: tokio::net::TcpStream| {
                    let peer = stream.peer_addr().ok();
                    // This accept loop is the test's own: a panicking make
                    // is caught, as a server's task would be, and the drive
                    // dropped (the loop goes on, to drain the listener).
                    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        make(&stoppable::ConnInfo::new(peer))
                    }));
                    let Ok(service) = made else {
                        drop_tx_inner.try_send(()).ok();
                        return;
                    };
                    if !o.tls {
                        let io = with_socket(TokioIo::new(stream), !o.forget_sockets);
                        if let Some(conn) = tracker.track(io) {
                            let conn = conn.remote_addr(peer);
                            tokio::spawn(conn.serve(service, |io, service| {
                                builder
                                    .serve_connection_with_upgrades(io, service)
                                    .into_owned()
                            }));
                        }
                        return;
                    }
                    let (handshake, keep) = (acceptor.accept(stream), !o.forget_sockets);
                    let handshake = async move { Ok(with_socket(handshake.await?, keep)) };
                    if let Some(handshaking) = tracker.track_handshake(handshake) {
                        let handshaking = handshaking.remote_addr(peer);
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
                    if let Some(conn) = tracker.track(TokioIo::new(stream)) {
                        let service = make(&stoppable::ConnInfo::new(None));
                        tokio::spawn(conn.serve(service, |io, service| {
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
                    // The drain first: once it began, the queue is the
                    // drain's (a shared socket's is the other owner's, B22).
                    tokio::select! {
                        biased;
                        () = stopper.draining() => break,
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => serve(stream),
                            Err(_) => continue,
                        },
                        accepted = accept_unix() => if let Ok(stream) = accepted {
                            serve_unix(stream);
                        },
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
        server.unix_other_owner = unix_other_owner;
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
                let conn = tracker.track(TokioIo::new(stream)).expect("tracked");
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
            let again = match tracker.track(TokioIo::new(stream)) {
                Some(_) => Ok(served),
                None => Err(stoppable::Error::Stopped),
            };
            (Ok(served), stopping.await, again)
        })
    }
}

/// A response body of either app: the suite's or axum's.
type AnyBody = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Responding = Pin<Box<dyn Future<Output = Result<Response<AnyBody>, Infallible>> + Send>>;

/// One connection's service, of either app: what a tracker's user with
/// several kinds of app would write.
#[derive(Clone)]
struct AnyService(Arc<dyn Fn(Request<Incoming>) -> Responding + Send + Sync>);

impl hyper::service::Service<Request<Incoming>> for AnyService {
    type Response = Response<AnyBody>;
    type Error = Infallible;
    type Future = Responding;

    fn call(&self, req: Request<Incoming>) -> Responding {
        (self.0)(req)
    }
}

/// Each connection's service: the suite's make-service, or the axum
/// `Router` with `ConnectInfo` (`Options::axum`), made with the same
/// `stoppable::MakeService` the server calls.
fn maker(o: &Options, app: &App) -> Box<dyn Fn(&stoppable::ConnInfo) -> AnyService> {
    use http_body_util::BodyExt;
    use hyper::service::Service;
    use stoppable::{IntoMakeService, MakeService};
    if o.axum {
        let router = crate::app::router(app.clone());
        let make = router
            .into_make_service_with_connect_info::<SocketAddr>()
            .into_make_service();
        return Box::new(move |conn| {
            let service = make.make_service(conn).expect("axum makes at once");
            AnyService(Arc::new(move |req| {
                let responding = service.call(req);
                Box::pin(async move {
                    let response = responding.await?;
                    Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
                })
            }))
        });
    }
    let make = AppMaker::new(app.clone(), o.panic_on_make);
    Box::new(move |conn| {
        let service = make.make_service(conn).expect("the app makes at once");
        AnyService(Arc::new(move |req| {
            let responding = service.call(req);
            Box::pin(async move {
                let response = responding.await?;
                Ok(response.map(|body| body.map_err(|never| match never {}).boxed_unsync()))
            })
        }))
    })
}

/// The IO as tracked: with its socket, or without (`Options::forget_sockets`:
/// the stop then reaches the connection only through its driver).
fn with_socket<Io>(io: Io, keep: bool) -> stoppable::EitherIo<Io, stoppable::WithoutSocket<Io>> {
    match keep {
        true => stoppable::EitherIo::Left(io),
        false => stoppable::EitherIo::Right(stoppable::WithoutSocket(io)),
    }
}
