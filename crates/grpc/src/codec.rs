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
        // `encode` would compute the length a second time, only to check
        // the room just made; `encode_raw` writes (and tonic's buffer grows
        // on its own, so it cannot run out of room).
        item.encode_raw(buf);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        settings()
    }
}

/// Sends messages already encoded (`Bytes` of a message's protobuf
/// encoding) and decodes `U`: for a client that builds its messages as
/// bytes, such as `sluice emit`, which writes each batch's envelopes
/// straight into one buffer instead of building an `EnvelopeBatch` for
/// tonic to encode.
#[derive(Debug)]
pub struct PreEncodedCodec<U>(PhantomData<U>);

impl<U> Default for PreEncodedCodec<U> {
    fn default() -> Self {
        PreEncodedCodec(PhantomData)
    }
}

impl<U> Codec for PreEncodedCodec<U>
where
    U: Message + Default + Send + 'static,
{
    type Encode = bytes::Bytes;
    type Decode = U;
    type Encoder = PreEncoded;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        PreEncoded
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(settings())
    }
}

/// Copies an encoded message into tonic's buffer.
#[derive(Debug)]
pub struct PreEncoded;

impl Encoder for PreEncoded {
    type Item = bytes::Bytes;
    type Error = Status;

    fn encode(&mut self, item: bytes::Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use bytes::BufMut as _;
        buf.put_slice(&item);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envelope::v2::{Envelope, EnvelopeBatch};
    use envelope::LogType;

    /// Envelopes written one by one as field 1 are an `EnvelopeBatch`.
    #[test]
    fn envelopes_encoded_as_field_one_decode_as_a_batch() {
        let envs: Vec<Envelope> = (0..3)
            .map(|i| {
                Envelope::log(
                    i,
                    "app",
                    "0",
                    bytes::Bytes::from(format!("line {i}")),
                    LogType::Out,
                )
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        for env in &envs {
            prost::encoding::message::encode(1, env, &mut buf);
        }
        let decoded = EnvelopeBatch::decode(buf.freeze()).expect("decodes");
        assert_eq!(decoded.batch, envs);
    }
}
