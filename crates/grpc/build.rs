//! Generates the `loggregator.v2` service glue with tonic-build's manual
//! builder: services described in Rust, over the hand-written prost
//! messages of `sluice-envelope` and `src/messages.rs`, so building sluice
//! needs no `protoc` and no `.proto` file. Servers and clients both.

use tonic_build::manual::{Builder, Method, Service};

/// Which side of a method streams.
#[derive(Clone, Copy, PartialEq)]
enum Streams {
    None,
    Client,
    Server,
}

fn method(name: &str, route: &str, input: &str, output: &str, streams: Streams) -> Method {
    let mut m = Method::builder()
        .name(name)
        .route_name(route)
        .input_type(input)
        .output_type(output)
        .codec_path("crate::codec::BatchCodec");
    match streams {
        Streams::None => {}
        Streams::Client => m = m.client_streaming(),
        Streams::Server => m = m.server_streaming(),
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
            Streams::Client,
        ))
        .method(method(
            "batch_sender",
            "BatchSender",
            "::envelope::v2::EnvelopeBatch",
            "crate::messages::BatchSenderResponse",
            Streams::Client,
        ))
        .method(method(
            "send",
            "Send",
            "::envelope::v2::EnvelopeBatch",
            "crate::messages::SendResponse",
            Streams::None,
        ))
        .build();
    let egress = Service::builder()
        .name("Egress")
        .package("loggregator.v2")
        .method(method(
            "receiver",
            "Receiver",
            "crate::messages::EgressRequest",
            "::envelope::v2::Envelope",
            Streams::Server,
        ))
        .method(method(
            "batched_receiver",
            "BatchedReceiver",
            "crate::messages::EgressBatchRequest",
            "::envelope::v2::EnvelopeBatch",
            Streams::Server,
        ))
        .build();
    // Clients too: `sluice emit` sends with the Ingress client.
    Builder::new().compile(&[ingress, egress]);
}
