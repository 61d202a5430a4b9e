//! Generic mode: any unary method of any gRPC service, described by a
//! `.proto` compiled at start ([`proto`], protox, no `protoc`) or by the
//! server's reflection service ([`reflection`]), with the request given as
//! JSON ([`json`]).
//!
//! Everything here runs once, before any load: the method is looked up,
//! the request is encoded to bytes and framed, and the hot path then sends
//! those same bytes on every call, exactly as the demo mode sends its
//! pre-encoded `WhoAmIRequest`. Every bad input is a [`MethodError`]
//! whose message is one paragraph with the fix.

pub mod json;
pub mod metadata;
pub mod proto;
pub mod reflection;

use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};

use crate::wire::grpc_frame;

/// Where the method's description comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    /// `.proto` files (`--proto`), with their import paths
    /// (`--import-path`; empty means each file's own directory).
    Proto {
        /// The files to compile.
        files: Vec<PathBuf>,
        /// Where imports are looked up.
        import_paths: Vec<PathBuf>,
    },
    /// The target's reflection service (`grpc.reflection.v1`, falling back
    /// to `v1alpha`).
    Reflection,
}

/// A generic call as given on the command line, not yet resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSpec {
    /// `pkg.Service/Method` (a leading `/` is accepted).
    pub method: String,
    /// Where the description comes from.
    pub schema: Schema,
    /// The request message in protobuf's JSON mapping.
    pub data: String,
}

/// A resolved unary method with its request encoded once.
#[derive(Debug, Clone)]
pub struct ResolvedCall {
    /// HTTP/2 path, `/pkg.Service/Method`.
    pub path: String,
    /// The request as a complete gRPC frame.
    pub frame: Bytes,
    /// The reply's message type (to decode the first reply for the report).
    pub output: MessageDescriptor,
    /// `proto` or `reflection`.
    pub described_by: &'static str,
}

impl ResolvedCall {
    /// The reply bytes as protobuf JSON, or why they do not decode as the
    /// method's output type.
    pub fn reply_json(&self, reply: &[u8]) -> String {
        match DynamicMessage::decode(self.output.clone(), reply) {
            Ok(msg) => serde_json::to_string(&msg).unwrap_or_else(|e| format!("<{e}>")),
            Err(e) => format!("<not a {}: {e}>", self.output.full_name()),
        }
    }
}

/// Why a generic call cannot be made. All but [`MethodError::Reflection`]
/// are bad input (exit 65).
#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    /// `--proto` does not compile.
    #[error(
        "--proto: {location}: {message}. Fix the .proto file (it is compiled with protox, as protoc would), or add the directory its imports are relative to with --import-path DIR."
    )]
    Proto {
        /// `file:line:column`, or the file alone when protox gives no span.
        location: String,
        /// protox's message.
        message: String,
    },
    /// `--call` is not `Service/Method`.
    #[error(
        "--call {0:?} is not of the form pkg.Service/Method (for example helloworld.Greeter/SayHello)"
    )]
    CallSyntax(String),
    /// No such service or method.
    #[error("--call {call}: {why}. The methods that exist: {}.", known.join(", "))]
    NoSuchMethod {
        /// What was asked.
        call: String,
        /// No such service, or no such method in it.
        why: String,
        /// `pkg.Service/Method` of every method found.
        known: Vec<String>,
    },
    /// A streaming method.
    #[error(
        "--call {call} is a {kind} method; loadgen's generic mode supports only unary methods (one request, one reply). Choose a unary method: {}.", unary.join(", ")
    )]
    Streaming {
        /// The method.
        call: String,
        /// `client-streaming`, `server-streaming` or `bidirectional streaming`.
        kind: &'static str,
        /// The unary methods that exist.
        unary: Vec<String>,
    },
    /// `--data` does not match the request type.
    #[error("{0}")]
    Data(#[from] json::DataError),
    /// `--data @FILE` cannot be read.
    #[error("--data @{path}: {source}. Give the JSON inline, or a readable file after the @.")]
    DataFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A bad `--metadata`.
    #[error("{0}")]
    Metadata(#[from] metadata::MetadataError),
    /// The server's reflection service cannot describe the method.
    #[error(
        "--call {call} without --proto asks the server's reflection service at {target}, which {why}. Pass the service's .proto with --proto FILE, or register reflection (grpc.reflection.v1) in the server."
    )]
    NoReflection {
        /// The method.
        call: String,
        /// The server.
        target: SocketAddr,
        /// What went wrong.
        why: String,
    },
    /// The reflection service answered descriptors that do not fit together.
    #[error("the reflection service at {target} sent descriptors that do not build: {message}")]
    BadDescriptors {
        /// The server.
        target: SocketAddr,
        /// prost-reflect's message.
        message: String,
    },
    /// The reflection service could not be reached at all.
    #[error(
        "cannot reach {target} to ask its reflection service for {call}: {why}. Check that the server is running and reachable (--target), or pass --proto FILE."
    )]
    Reflection {
        /// The method.
        call: String,
        /// The server.
        target: SocketAddr,
        /// The transport error.
        why: String,
    },
}

impl MethodError {
    /// 65 (EX_DATAERR) for bad input; 1 when the server could not be reached.
    pub fn exit_code(&self) -> u8 {
        match self {
            MethodError::Reflection { .. } => 1,
            _ => 65,
        }
    }
}

/// `pkg.Service` and `Method` of `--call` (`pkg.Service/Method`,
/// `/pkg.Service/Method` or grpcurl's `pkg.Service.Method`).
pub fn split_call(call: &str) -> Result<(&str, &str), MethodError> {
    let trimmed = call.strip_prefix('/').unwrap_or(call);
    let split = trimmed.split_once('/').or_else(|| trimmed.rsplit_once('.'));
    match split {
        Some((service, method))
            if !service.is_empty() && !method.is_empty() && !method.contains('/') =>
        {
            Ok((service, method))
        }
        _ => Err(MethodError::CallSyntax(call.to_string())),
    }
}

/// Reads `--data`: inline JSON, `@FILE`, or `{}` when absent.
pub fn read_data(data: Option<&str>) -> Result<String, MethodError> {
    match data {
        None => Ok("{}".to_string()),
        Some(d) => match d.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path).map_err(|source| MethodError::DataFile {
                path: path.into(),
                source,
            }),
            None => Ok(d.to_string()),
        },
    }
}

/// Resolves `spec` against the pool: finds the method, refuses streaming,
/// encodes the request.
pub fn resolve_in(
    pool: &DescriptorPool,
    spec: &CallSpec,
    described_by: &'static str,
) -> Result<ResolvedCall, MethodError> {
    let method = find_method(pool, &spec.method)?;
    let input = method.input();
    let message = json::encode(&input, &spec.data)?;
    Ok(ResolvedCall {
        path: format!("/{}/{}", method.parent_service().full_name(), method.name()),
        frame: Bytes::from(grpc_frame(&message)),
        output: method.output(),
        described_by,
    })
}

/// Resolves `spec`: compiles the protos, or asks `target`'s reflection
/// service.
pub async fn resolve(spec: &CallSpec, target: SocketAddr) -> Result<ResolvedCall, MethodError> {
    match &spec.schema {
        Schema::Proto {
            files,
            import_paths,
        } => {
            split_call(&spec.method)?;
            let pool = proto::compile(files, import_paths)?;
            resolve_in(&pool, spec, "proto")
        }
        Schema::Reflection => {
            let (service, _) = split_call(&spec.method)?;
            let pool = reflection::describe(target, service, &spec.method).await?;
            resolve_in(&pool, spec, "reflection")
        }
    }
}

fn find_method(pool: &DescriptorPool, call: &str) -> Result<MethodDescriptor, MethodError> {
    let (service_name, method_name) = split_call(call)?;
    let no_such = |why: String| MethodError::NoSuchMethod {
        call: call.to_string(),
        why,
        known: method_names(pool, |_| true),
    };
    let service = pool
        .get_service_by_name(service_name)
        .ok_or_else(|| no_such(format!("there is no service {service_name}")))?;
    let method = service
        .methods()
        .find(|m| m.name() == method_name)
        .ok_or_else(|| no_such(format!("{service_name} has no method {method_name}")))?;
    let kind = match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => return Ok(method),
        (true, false) => "client-streaming",
        (false, true) => "server-streaming",
        (true, true) => "bidirectional streaming",
    };
    Err(MethodError::Streaming {
        call: call.to_string(),
        kind,
        unary: method_names(pool, |m| {
            !m.is_client_streaming() && !m.is_server_streaming()
        }),
    })
}

/// `pkg.Service/Method` of every method in the pool that `keep` accepts
/// (`(none)` when there is none).
fn method_names(pool: &DescriptorPool, keep: impl Fn(&MethodDescriptor) -> bool) -> Vec<String> {
    let mut names: Vec<String> = pool
        .services()
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .filter(|m| keep(m))
        .map(|m| format!("{}/{}", m.parent_service().full_name(), m.name()))
        .collect();
    names.sort();
    if names.is_empty() {
        names.push("(none)".to_string());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTO: &str = r#"
syntax = "proto3";
package t.v1;
service S {
  rpc Unary (Req) returns (Rep);
  rpc Down (Req) returns (stream Rep);
}
message Req { string name = 1; }
message Rep { string message = 1; }
"#;

    fn pool() -> DescriptorPool {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.proto"), PROTO).unwrap();
        proto::compile(&[dir.path().join("t.proto")], &[]).unwrap()
    }

    fn spec(method: &str, data: &str) -> CallSpec {
        CallSpec {
            method: method.into(),
            schema: Schema::Reflection,
            data: data.into(),
        }
    }

    #[test]
    fn call_forms() {
        assert_eq!(split_call("a.B/C").unwrap(), ("a.B", "C"));
        assert_eq!(split_call("/a.B/C").unwrap(), ("a.B", "C"));
        assert_eq!(split_call("a.B.C").unwrap(), ("a.B", "C"));
        for bad in ["", "C", "/C", "a.B/", "a/B/C"] {
            assert!(split_call(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolves_and_encodes_once() {
        let call =
            resolve_in(&pool(), &spec("t.v1.S/Unary", r#"{"name":"lab"}"#), "proto").unwrap();
        assert_eq!(call.path, "/t.v1.S/Unary");
        // field 1, length 3, "lab", in a 5-byte gRPC frame header.
        assert_eq!(&call.frame[..], b"\0\0\0\0\x05\x0a\x03lab");
        assert_eq!(call.reply_json(b"\x0a\x02hi"), r#"{"message":"hi"}"#);
    }

    #[test]
    fn unknown_method_lists_the_methods() {
        let e = resolve_in(&pool(), &spec("t.v1.S/Nope", "{}"), "proto").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("t.v1.S has no method Nope"), "{text}");
        assert!(
            text.contains("t.v1.S/Unary, t.v1.S/Down")
                || text.contains("t.v1.S/Down, t.v1.S/Unary"),
            "{text}"
        );
        let e = resolve_in(&pool(), &spec("x.Y/Z", "{}"), "proto").unwrap_err();
        assert!(e.to_string().contains("there is no service x.Y"), "{e}");
        assert_eq!(e.exit_code(), 65);
    }

    #[test]
    fn streaming_is_refused() {
        let e = resolve_in(&pool(), &spec("t.v1.S/Down", "{}"), "proto").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("server-streaming"), "{text}");
        assert!(text.contains("only unary"), "{text}");
        assert!(
            text.contains("t.v1.S/Unary") && !text.contains("t.v1.S/Down."),
            "{text}"
        );
    }

    #[test]
    fn data_file_and_default() {
        assert_eq!(read_data(None).unwrap(), "{}");
        assert_eq!(read_data(Some(r#"{"a":1}"#)).unwrap(), r#"{"a":1}"#);
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), r#"{"name":"file"}"#).unwrap();
        let arg = format!("@{}", f.path().display());
        assert_eq!(read_data(Some(&arg)).unwrap(), r#"{"name":"file"}"#);
        assert!(matches!(
            read_data(Some("@/nonexistent/x.json")),
            Err(MethodError::DataFile { .. })
        ));
    }
}
