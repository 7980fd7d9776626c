//! The `loggregator.v2` Ingress responses (all empty), as prost derives;
//! field-for-field what `ingress.proto` declares.

/// The answer to `Ingress.Sender` when the client closes its stream.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct IngressResponse {}

/// The answer to `Ingress.BatchSender` when the client closes its stream.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct BatchSenderResponse {}

/// The answer to `Ingress.Send`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SendResponse {}
