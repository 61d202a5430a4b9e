//! grpc-demo: placeholder.
pub mod pb {
    tonic::include_proto!("ipvslab.demo.v1");
}
