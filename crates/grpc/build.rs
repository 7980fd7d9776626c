//! Generates the `loggregator.v2` service glue with tonic-build's manual
//! builder: services described in Rust, over the hand-written prost
//! messages of `sluice-envelope` and `src/messages.rs`, so building sluice
//! needs no `protoc` and no `.proto` file.

use tonic_build::manual::{Builder, Method, Service};

fn method(name: &str, route: &str, input: &str, output: &str, client_streaming: bool) -> Method {
    let mut m = Method::builder()
        .name(name)
        .route_name(route)
        .input_type(input)
        .output_type(output)
        .codec_path("tonic_prost::ProstCodec");
    if client_streaming {
        m = m.client_streaming();
    }
    m.build()
}

fn main() {
    let ingress = Service::builder()
        .name("Ingress")
        .package("loggregator.v2")
        .method(method(
            "sender",
            "Sender",
            "::envelope::v2::Envelope",
            "crate::messages::IngressResponse",
            true,
        ))
        .method(method(
            "batch_sender",
            "BatchSender",
            "::envelope::v2::EnvelopeBatch",
            "crate::messages::BatchSenderResponse",
            true,
        ))
        .method(method(
            "send",
            "Send",
            "::envelope::v2::EnvelopeBatch",
            "crate::messages::SendResponse",
            false,
        ))
        .build();
    Builder::new().build_client(false).compile(&[ingress]);
}
