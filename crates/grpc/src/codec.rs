//! The codec every `loggregator.v2` method uses: prost's, with two changes
//! for batches of a hundred envelopes (~30 KB each):
//! - the encoder makes room for the whole message (its `encoded_len`)
//!   before writing it, where prost's would grow tonic's buffer a piece at
//!   a time, moving what it wrote at each step;
//! - tonic's buffers start at [`BUFFER_SIZE`] rather than 8 KiB, so a
//!   batch fits without growing them.
//!
//! Decoding is prost's, unchanged (`tonic_prost::ProstDecoder`).

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic::Status;
use tonic_prost::ProstDecoder;

/// tonic's encode and decode buffers start this large.
pub const BUFFER_SIZE: usize = 64 << 10;
/// Encoded bytes after which a stream yields to the runtime (tonic's default).
const YIELD_THRESHOLD: usize = 32 << 10;

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD)
}

/// Encodes `T`, decodes `U`.
#[derive(Debug)]
pub struct BatchCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for BatchCodec<T, U> {
    fn default() -> Self {
        BatchCodec(PhantomData)
    }
}

impl<T, U> Codec for BatchCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = SizedEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        SizedEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(settings())
    }
}

/// prost's encoding after reserving the message's length.
#[derive(Debug)]
pub struct SizedEncoder<T>(PhantomData<T>);

impl<T: Message> Encoder for SizedEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.reserve(item.encoded_len());
        item.encode(buf)
            .map_err(|e| Status::internal(format!("encoding a message: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        settings()
    }
}
