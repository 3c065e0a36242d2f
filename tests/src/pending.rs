//! A request the test can see arrive: sent by hand on its own connection,
//! so that the test knows (from the kernel, not from a sleep) when the
//! server has read it, and only then acts (sends SIGTERM, a second request).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A `GET` sent on its own connection, its answer not read yet.
pub struct PendingGet {
    stream: TcpStream,
    what: String,
}

impl PendingGet {
    /// Connects to `addr` and sends `GET path` for `host`
    /// (`Connection: close`: the answer ends with the connection).
    pub fn send(addr: SocketAddr, host: &str, path: &str) -> PendingGet {
        let mut stream = TcpStream::connect(addr).expect("the server accepts connections");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
        PendingGet {
            stream,
            what: format!("GET {path}"),
        }
    }

    /// Waits until the server has read the request off its socket: it is in
    /// the server's hands (being routed, queued or run), no longer in a
    /// kernel buffer or the listener's accept queue.
    pub fn wait_until_read(&self) {
        let server = self.stream.peer_addr().unwrap();
        let client = self.stream.local_addr().unwrap();
        crate::eventually(Duration::from_secs(10), || {
            match unread_bytes(server, client)? {
                0 => Ok(()),
                n => Err(format!("{n} bytes of {} not read by the server", self.what)),
            }
        });
    }

    /// Reads the answer: its status and (de-chunked) body.
    pub fn answer(mut self) -> (u16, String) {
        let mut raw = Vec::new();
        self.stream
            .read_to_end(&mut raw)
            .unwrap_or_else(|err| panic!("reading the answer to {}: {err}", self.what));
        parse_answer(&raw).unwrap_or_else(|| {
            panic!(
                "{}: not an HTTP answer: {:?}",
                self.what,
                String::from_utf8_lossy(&raw)
            )
        })
    }
}

/// The bytes waiting in the receive queue of the server's end of the
/// connection `server` ← `client` (IPv4), from `/proc/net/tcp`.
fn unread_bytes(server: SocketAddr, client: SocketAddr) -> Result<u64, String> {
    let (SocketAddr::V4(server), SocketAddr::V4(client)) = (server, client) else {
        return Err("only IPv4 connections are looked up".into());
    };
    // `0100007F:1F90`: the address as the kernel stores it (network order
    // read as a native u32), the port big-endian.
    let hex = |addr: std::net::SocketAddrV4| {
        format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(addr.ip().octets()),
            addr.port()
        )
    };
    let (local, remote) = (hex(server), hex(client));
    let table = std::fs::read_to_string("/proc/net/tcp").map_err(|e| e.to_string())?;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str()) {
            let rx = fields
                .get(4)
                .and_then(|queues| queues.split_once(':'))
                .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
                .ok_or_else(|| format!("an unreadable /proc/net/tcp line: {line}"))?;
            return Ok(rx);
        }
    }
    Err(format!(
        "no connection {client} → {server} in /proc/net/tcp"
    ))
}

/// `HTTP/1.1 200 OK\r\n…\r\n\r\nBODY` → (200, BODY), de-chunking a
/// chunked body.
fn parse_answer(raw: &[u8]) -> Option<(u16, String)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = &raw[split + 4..];
    if !head.contains("\r\ntransfer-encoding: chunked") {
        return Some((status, String::from_utf8_lossy(body).into_owned()));
    }
    let mut text = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some((status, String::from_utf8_lossy(&text).into_owned()));
        }
        text.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_and_chunked_answers() {
        assert_eq!(
            parse_answer(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy"),
            Some((503, "busy".into()))
        );
        assert_eq!(
            parse_answer(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nslept \r\n3\r\n1 m\r\n0\r\n\r\n"
            ),
            Some((200, "slept 1 m".into()))
        );
        assert_eq!(parse_answer(b"garbage"), None);
    }

    #[test]
    fn finds_a_connection_and_sees_its_unread_bytes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.write_all(b"hello").unwrap();
        let (server, _) = listener.accept().unwrap();
        let (to, from) = (client.peer_addr().unwrap(), client.local_addr().unwrap());
        crate::eventually(Duration::from_secs(5), || match unread_bytes(to, from)? {
            5 => Ok(()),
            n => Err(format!("{n} unread")),
        });
        let mut buf = [0u8; 5];
        (&server).read_exact(&mut buf).unwrap();
        assert_eq!(unread_bytes(to, from), Ok(0));
    }
}
