//! The suite's TLS: one self-signed certificate per test process (rcgen),
//! the server's configuration from the library's PEM helper, and blocking
//! rustls clients that trust it.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, StreamOwned};

use crate::client::{Conn, DEADLINE};

/// The certificate and key, PEM.
struct Pem {
    cert: String,
    key: String,
}

fn pem() -> &'static Pem {
    static PEM: OnceLock<Pem> = OnceLock::new();
    PEM.get_or_init(|| {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a self-signed certificate");
        Pem {
            cert: certified.cert.pem(),
            key: certified.signing_key.serialize_pem(),
        }
    })
}

/// The server's configuration: ALPN h2 and http/1.1.
pub fn server_config() -> Arc<ServerConfig> {
    let pem = pem();
    stoppable::tls::server_config(pem.cert.as_bytes(), pem.key.as_bytes()).expect("valid PEM")
}

/// A client configuration that trusts the suite's certificate and offers
/// `alpn`.
pub fn client_config(alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let cert = CertificateDer::from_pem_slice(pem().cert.as_bytes()).expect("certificate");
    roots.add(cert).expect("a root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

use rustls::pki_types::pem::PemObject;

/// A blocking TLS stream.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection whose handshake has begun: its ClientHello is sent.
pub struct Handshake {
    tls: ClientConnection,
    pub tcp: TcpStream,
}

impl Handshake {
    /// Connects and sends the ClientHello (offering HTTP/1.1 only).
    pub fn begin(addr: SocketAddr) -> Handshake {
        let mut tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(DEADLINE)).expect("timeout");
        tcp.set_nodelay(true).expect("nodelay");
        let name = ServerName::try_from("localhost").expect("name");
        let mut tls = ClientConnection::new(client_config(&[b"http/1.1"]), name).expect("client");
        tls.write_tls(&mut tcp).expect("ClientHello sent");
        Handshake { tls, tcp }
    }

    /// Completes the handshake.
    pub fn finish(mut self) -> io::Result<Conn<TlsStream>> {
        while self.tls.is_handshaking() {
            self.tls.complete_io(&mut self.tcp)?;
        }
        Ok(Conn::over(StreamOwned::new(self.tls, self.tcp)))
    }
}

/// A TLS connection, handshake done.
pub fn open(addr: SocketAddr) -> Conn<TlsStream> {
    Handshake::begin(addr).finish().expect("TLS handshake")
}
