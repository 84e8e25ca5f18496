//! Reading a TLS ClientHello off a tunnel before anything is forwarded, to
//! learn the server name the client will ask the far end for (SNI).

use tls_parser::{
    parse_tls_extensions, parse_tls_plaintext, SNIType, TlsExtension, TlsMessage,
    TlsMessageHandshake,
};
use tokio::io::{AsyncRead, AsyncReadExt};

/// TLS handshake record type.
const HANDSHAKE: u8 = 0x16;
/// Largest record a ClientHello may arrive in (2^14 plus TLS 1.2's
/// allowance for expansion).
const MAX_RECORD: usize = (1 << 14) + 2048;

/// The first record of a TLS connection and the name it asks for.
#[derive(Debug)]
pub struct ClientHello {
    /// Everything read, to be forwarded unchanged.
    pub bytes: Vec<u8>,
    pub sni: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SniError {
    /// The stream does not start with a TLS handshake; carries what was read.
    #[error("the connection does not start with a TLS handshake")]
    NotTls(Vec<u8>),
    #[error("the TLS ClientHello could not be read: {0}")]
    Unreadable(String),
    #[error("reading the TLS ClientHello: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the first TLS record from `r` and extracts its SNI. The first read
/// decides: anything but a handshake record is handed back as `NotTls` at
/// once (a protocol whose client speaks first in small pieces is not held).
pub async fn read_client_hello<R: AsyncRead + Unpin>(r: &mut R) -> Result<ClientHello, SniError> {
    let mut bytes = vec![0u8; 5];
    let n = r.read(&mut bytes).await?;
    bytes.truncate(n);
    if n == 0 {
        return Err(SniError::Unreadable("the client closed the tunnel".into()));
    }
    if bytes[0] != HANDSHAKE {
        return Err(SniError::NotTls(bytes));
    }
    bytes.resize(5, 0);
    r.read_exact(&mut bytes[n..]).await?;
    let len = u16::from_be_bytes([bytes[3], bytes[4]]) as usize;
    if len > MAX_RECORD {
        return Err(SniError::Unreadable(format!("record of {len} bytes")));
    }
    bytes.resize(5 + len, 0);
    r.read_exact(&mut bytes[5..]).await?;
    let sni = sni_of(&bytes)?;
    Ok(ClientHello { bytes, sni })
}

fn sni_of(record: &[u8]) -> Result<Option<String>, SniError> {
    let bad = |why: &str| SniError::Unreadable(why.to_string());
    let (_, plain) = parse_tls_plaintext(record)
        .map_err(|_| bad("not a complete ClientHello in the first record"))?;
    let hello = plain
        .msg
        .iter()
        .find_map(|m| match m {
            TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) => Some(ch),
            _ => None,
        })
        .ok_or_else(|| bad("the first handshake message is not a ClientHello"))?;
    let Some(ext) = hello.ext else {
        return Ok(None);
    };
    let (_, exts) = parse_tls_extensions(ext).map_err(|_| bad("malformed extensions"))?;
    for e in exts {
        if let TlsExtension::SNI(names) = e {
            for (kind, name) in names {
                if kind == SNIType::HostName {
                    let name =
                        std::str::from_utf8(name).map_err(|_| bad("server name is not UTF-8"))?;
                    return Ok(Some(name.to_ascii_lowercase()));
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal TLS 1.2 ClientHello record, with an SNI extension when
    /// `name` is given.
    pub(crate) fn hello(name: Option<&str>) -> Vec<u8> {
        let mut ext = Vec::new();
        if let Some(n) = name {
            let n = n.as_bytes();
            let list_len = 3 + n.len();
            ext.extend_from_slice(&[0, 0]); // server_name
            ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
            ext.extend_from_slice(&(list_len as u16).to_be_bytes());
            ext.push(0); // host_name
            ext.extend_from_slice(&(n.len() as u16).to_be_bytes());
            ext.extend_from_slice(n);
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7u8; 32]); // random
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![HANDSHAKE, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[tokio::test]
    async fn reads_the_server_name_even_when_the_record_arrives_in_pieces() {
        let rec = hello(Some("Allowed.Test"));
        let (mut w, mut r) = tokio::io::duplex(64);
        let send = rec.clone();
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for chunk in send.chunks(3) {
                w.write_all(chunk).await.unwrap();
                tokio::task::yield_now().await;
            }
            w
        });
        let h = read_client_hello(&mut r).await.unwrap();
        writer.await.unwrap();
        assert_eq!(h.sni.as_deref(), Some("allowed.test"));
        assert_eq!(h.bytes, rec);
    }

    #[tokio::test]
    async fn no_sni_and_non_tls_are_told_apart() {
        let rec = hello(None);
        let h = read_client_hello(&mut &rec[..]).await.unwrap();
        assert_eq!(h.sni, None);
        let plain = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        match read_client_hello(&mut &plain[..]).await {
            Err(SniError::NotTls(b)) => assert_eq!(b, b"GET /"),
            other => panic!("{other:?}"),
        }
        let junk = [HANDSHAKE, 3, 1, 0, 4, 9, 9, 9, 9];
        assert!(matches!(
            read_client_hello(&mut &junk[..]).await,
            Err(SniError::Unreadable(_))
        ));
    }
}
