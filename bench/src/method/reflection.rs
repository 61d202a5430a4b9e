//! `--call` without `--proto`: the method's descriptors from the server's
//! reflection service, `grpc.reflection.v1`, falling back to `v1alpha`
//! (which older grpc-java and grpc-go servers register alone).
//!
//! The file that declares the service is asked for, then every import it
//! names that did not come with it (servers differ in whether they send
//! dependencies along). When the service is unknown, every listed service
//! is described instead, so the error can name the methods that do exist.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use prost::Message as _;
use prost_reflect::DescriptorPool;
use prost_reflect::prost_types::FileDescriptorProto;
use tonic::transport::{Channel, Endpoint};

use super::MethodError;

/// What one reflection request returned.
enum Answer {
    /// Serialized `FileDescriptorProto`s.
    Files(Vec<Vec<u8>>),
    /// Service names (`list_services`).
    Services(Vec<String>),
    /// The server's error response (`NOT_FOUND` for an unknown symbol).
    NotFound,
}

/// One version of the reflection protocol; the two differ only in their
/// package name, so the same code is generated for both.
macro_rules! reflection_version {
    ($module:ident) => {
        mod $module {
            use super::Answer;
            use pb::server_reflection_client::ServerReflectionClient;
            use pb::server_reflection_request::MessageRequest;
            use pb::server_reflection_response::MessageResponse;
            use tonic_reflection::pb::$module as pb;

            /// Files or services of one request, or the status of the RPC.
            pub(super) async fn ask(
                channel: tonic::transport::Channel,
                request: super::Request,
            ) -> Result<Answer, tonic::Status> {
                let message_request = match request {
                    super::Request::Symbol(s) => MessageRequest::FileContainingSymbol(s),
                    super::Request::File(f) => MessageRequest::FileByFilename(f),
                    super::Request::Services => MessageRequest::ListServices(String::new()),
                };
                let req = pb::ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(message_request),
                };
                let mut client = ServerReflectionClient::new(channel);
                let mut replies = client
                    .server_reflection_info(futures::stream::iter([req]))
                    .await?
                    .into_inner();
                let reply = replies.message().await?.ok_or_else(|| {
                    tonic::Status::unknown("the reflection stream closed without an answer")
                })?;
                Ok(match reply.message_response {
                    Some(MessageResponse::FileDescriptorResponse(f)) => {
                        Answer::Files(f.file_descriptor_proto)
                    }
                    Some(MessageResponse::ListServicesResponse(l)) => {
                        Answer::Services(l.service.into_iter().map(|s| s.name).collect())
                    }
                    // An error response (NOT_FOUND for an unknown symbol),
                    // or an answer to a question not asked.
                    _ => Answer::NotFound,
                })
            }
        }
    };
}

reflection_version!(v1);
reflection_version!(v1alpha);

/// A reflection request.
enum Request {
    Symbol(String),
    File(String),
    Services,
}

/// The version a server answered.
#[derive(Clone, Copy)]
enum Version {
    V1,
    V1Alpha,
}

async fn ask(
    channel: &Channel,
    version: Version,
    request: Request,
) -> Result<Answer, tonic::Status> {
    match version {
        Version::V1 => v1::ask(channel.clone(), request).await,
        Version::V1Alpha => v1alpha::ask(channel.clone(), request).await,
    }
}

/// A pool with `service` (and its imports), from `target`'s reflection
/// service; `call` is only for the error messages.
pub async fn describe(
    target: SocketAddr,
    service: &str,
    call: &str,
) -> Result<DescriptorPool, MethodError> {
    let no_reflection = |why: String| MethodError::NoReflection {
        call: call.to_string(),
        target,
        why,
    };
    let channel = Endpoint::from_shared(format!("http://{target}"))
        .expect("an address is a valid URI")
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| MethodError::Reflection {
            call: call.to_string(),
            target,
            why: grpc_demo::client::error_chain(&e),
        })?;
    let mut version = Version::V1;
    let first = match ask(&channel, version, Request::Symbol(service.to_string())).await {
        Err(s) if s.code() == tonic::Code::Unimplemented => {
            version = Version::V1Alpha;
            ask(&channel, version, Request::Symbol(service.to_string())).await
        }
        other => other,
    };
    let mut files = BTreeMap::new();
    match first {
        Ok(Answer::Files(f)) => add_files(&mut files, f, target)?,
        Ok(Answer::NotFound) | Ok(Answer::Services(_)) => {
            // Unknown service: describe every service, for the list of methods.
            let Answer::Services(names) = ask(&channel, version, Request::Services)
                .await
                .map_err(|s| no_reflection(status_text(&s)))?
            else {
                return Err(no_reflection("did not list its services".to_string()));
            };
            for name in names.iter().filter(|n| !n.starts_with("grpc.reflection.")) {
                if let Ok(Answer::Files(f)) =
                    ask(&channel, version, Request::Symbol(name.clone())).await
                {
                    add_files(&mut files, f, target)?;
                }
            }
        }
        Err(s) if s.code() == tonic::Code::Unimplemented => {
            return Err(no_reflection(
                "does not implement grpc.reflection.v1 or grpc.reflection.v1alpha (UNIMPLEMENTED)"
                    .to_string(),
            ));
        }
        Err(s) => return Err(no_reflection(status_text(&s))),
    }
    fetch_imports(&channel, version, &mut files, target).await?;
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_protos(files.into_values())
        .map_err(|e| MethodError::BadDescriptors {
            target,
            message: e.to_string(),
        })?;
    Ok(pool)
}

fn status_text(s: &tonic::Status) -> String {
    format!("answered {:?}: {}", s.code(), s.message())
}

fn add_files(
    files: &mut BTreeMap<String, FileDescriptorProto>,
    raw: Vec<Vec<u8>>,
    target: SocketAddr,
) -> Result<(), MethodError> {
    for bytes in raw {
        let file = FileDescriptorProto::decode(bytes.as_slice()).map_err(|e| {
            MethodError::BadDescriptors {
                target,
                message: e.to_string(),
            }
        })?;
        files.entry(file.name().to_string()).or_insert(file);
    }
    Ok(())
}

/// Asks for every imported file that has not arrived yet (bounded: a
/// server that keeps answering other files cannot loop this forever).
async fn fetch_imports(
    channel: &Channel,
    version: Version,
    files: &mut BTreeMap<String, FileDescriptorProto>,
    target: SocketAddr,
) -> Result<(), MethodError> {
    let mut asked = BTreeSet::new();
    for _ in 0..64 {
        let missing: Vec<String> = files
            .values()
            .flat_map(|f| f.dependency.iter().cloned())
            .filter(|d| !files.contains_key(d) && !asked.contains(d))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        for name in missing {
            asked.insert(name.clone());
            if let Ok(Answer::Files(f)) = ask(channel, version, Request::File(name)).await {
                add_files(files, f, target)?;
            }
        }
    }
    Ok(())
}
