//! The bytes on the wire, without prost on the hot path.
//!
//! The request never changes during a run, so it is encoded once (with prost,
//! from the real proto, and framed with [`grpc_frame`]) and every call sends a
//! clone of the same [`Bytes`].
//! Replies are not decoded into a `WhoAmIReply` (three `String` allocations);
//! [`ReplyView::parse`] borrows the few fields the load generator needs from
//! the received buffer.

use bytes::Bytes;
use grpc_demo::pb;
use prost::Message;

/// Encodes the `WhoAmIRequest` sent by every call: `payload_size` bytes of
/// `x`, asking the server to echo `response_size` bytes.
pub fn encode_request(payload_size: usize, response_size: u32) -> Bytes {
    let req = pb::WhoAmIRequest {
        payload: vec![b'x'; payload_size],
        response_size,
    };
    Bytes::from(req.encode_to_vec())
}

/// Wraps an encoded message in a gRPC length-prefixed frame (flag 0 =
/// uncompressed, 4-byte big-endian length), which is what h2load's `-d` file
/// must contain.
pub fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The fields of a `WhoAmIReply` that attribution needs, borrowed from the
/// reply buffer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplyView<'a> {
    /// `server_name`.
    pub server_name: &'a [u8],
    /// `server_addr` (the server's own address; the VIP in DR).
    pub server_addr: &'a [u8],
    /// `peer_addr` (the client address the server saw).
    pub peer_addr: &'a [u8],
    /// `conn_id`.
    pub conn_id: u64,
    /// `conn_seq`.
    pub conn_seq: u64,
}

/// A reply that is not a valid `WhoAmIReply` encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed WhoAmIReply")]
pub struct MalformedReply;

fn varint(buf: &mut &[u8]) -> Result<u64, MalformedReply> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().ok_or(MalformedReply)?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(MalformedReply)
}

impl<'a> ReplyView<'a> {
    /// Parses the protobuf wire format by hand; unknown fields are skipped,
    /// as protobuf requires.
    pub fn parse(mut buf: &'a [u8]) -> Result<Self, MalformedReply> {
        let mut view = ReplyView::default();
        while !buf.is_empty() {
            let key = varint(&mut buf)?;
            let (field, wire_type) = (key >> 3, key & 7);
            match wire_type {
                0 => {
                    let v = varint(&mut buf)?;
                    match field {
                        4 => view.conn_id = v,
                        5 => view.conn_seq = v,
                        _ => {}
                    }
                }
                2 => {
                    let len = usize::try_from(varint(&mut buf)?).map_err(|_| MalformedReply)?;
                    if len > buf.len() {
                        return Err(MalformedReply);
                    }
                    let (v, rest) = buf.split_at(len);
                    buf = rest;
                    match field {
                        1 => view.server_name = v,
                        2 => view.server_addr = v,
                        3 => view.peer_addr = v,
                        _ => {}
                    }
                }
                1 => buf = buf.get(8..).ok_or(MalformedReply)?,
                5 => buf = buf.get(4..).ok_or(MalformedReply)?,
                _ => return Err(MalformedReply),
            }
        }
        Ok(view)
    }

    /// Port of `peer_addr` (`ip:port` or `[v6]:port`), i.e. the client's local
    /// port as the server saw it.
    pub fn peer_port(&self) -> Option<u16> {
        let s = std::str::from_utf8(self.peer_addr).ok()?;
        s.rsplit_once(':')?.1.parse().ok()
    }

    /// IP of `peer_addr`.
    pub fn peer_ip(&self) -> Option<std::net::IpAddr> {
        let s = std::str::from_utf8(self.peer_addr).ok()?;
        s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_frame_matches_benchmarking_md() {
        // BENCHMARKING.md: field 1 = 16 bytes of 'x' is
        // \0 \0\0\0\x12 \x0a \x10 xxxxxxxxxxxxxxxx (23 bytes).
        let frame = grpc_frame(&encode_request(16, 0));
        let mut expected = vec![0, 0, 0, 0, 0x12, 0x0a, 0x10];
        expected.extend_from_slice(&[b'x'; 16]);
        assert_eq!(frame, expected);
    }

    #[test]
    fn parses_what_prost_encodes() {
        let reply = pb::WhoAmIReply {
            server_name: "rs1".into(),
            server_addr: "192.168.122.1:8080".into(),
            peer_addr: "10.0.0.7:40001".into(),
            conn_id: 300,
            conn_seq: 1 << 40,
            payload: vec![1; 200],
        };
        let bytes = reply.encode_to_vec();
        let view = ReplyView::parse(&bytes).unwrap();
        assert_eq!(view.server_name, b"rs1");
        assert_eq!(view.server_addr, b"192.168.122.1:8080");
        assert_eq!(view.peer_addr, b"10.0.0.7:40001");
        assert_eq!(view.conn_id, 300);
        assert_eq!(view.conn_seq, 1 << 40);
        assert_eq!(view.peer_port(), Some(40001));
        assert_eq!(view.peer_ip(), Some("10.0.0.7".parse().unwrap()));
    }

    #[test]
    fn rejects_truncated() {
        let reply = pb::WhoAmIReply {
            server_name: "rs1".into(),
            ..Default::default()
        };
        let bytes = reply.encode_to_vec();
        assert_eq!(
            ReplyView::parse(&bytes[..bytes.len() - 1]),
            Err(MalformedReply)
        );
    }
}
