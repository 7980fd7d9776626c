//! `tcp://` drains (Logyard's): one line per entry, the drain's format
//! rendering (verbatim by default) followed by LF, over plain TCP. CR, LF
//! and NUL inside a record are escaped (`\r`, `\n`, `\0`), so one message
//! is always one line (see [`super::encode`]).

use super::encode::LineEncoder;
use super::stream::{peer_name, StreamWriter};
use super::{DrainWriter, WriteError, WriterContext};
use crate::format::Format;
use crate::spec::LinesTarget;

pub(super) async fn connect(
    ctx: &WriterContext,
    target: &LinesTarget,
) -> Result<Box<dyn DrainWriter>, WriteError> {
    let (stream, addr) = super::connect_tcp(ctx, &target.endpoint).await?;
    let peer = peer_name(&target.endpoint.host, addr);
    tracing::debug!(drain = %ctx.name, %peer, "tcp drain connected");
    let lines = LineEncoder::new(ctx, Format::Verbatim, true);
    Ok(Box::new(StreamWriter::new(
        stream,
        peer,
        move |entry: &envelope::Entry, out: &mut Vec<u8>| lines.line(entry, out),
        ctx.max_bytes(),
    )))
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::super::connect;
    use super::super::testutil::{batch, ctx, ctx_with};
    use crate::format::Format;
    use crate::netpolicy::NetPolicy;

    async fn read_exactly(conn: &mut tokio::net::TcpStream, n: usize) -> String {
        let mut buf = vec![0u8; n];
        conn.read_exact(&mut buf).await.unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[tokio::test]
    async fn lines_in_the_drain_format() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut writer = connect(&ctx(&format!("tcp://127.0.0.1:{port}")))
            .await
            .unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        writer.send(&batch(&["first", "second"])).await.unwrap();
        assert_eq!(read_exactly(&mut conn, 13).await, "first\nsecond\n");

        let policy = NetPolicy::from_list("127.0.0.0/8").unwrap();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut writer = connect(&ctx_with(&url, policy, Some(Format::Json)))
            .await
            .unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        writer.send(&batch(&["json"])).await.unwrap();
        let mut buf = [0u8; 1];
        let mut line = Vec::new();
        while buf[0] != b'\n' {
            conn.read_exact(&mut buf).await.unwrap();
            line.push(buf[0]);
        }
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["text"], "json");
    }

    #[tokio::test]
    async fn a_payload_cannot_forge_lines() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut writer = connect(&ctx(&format!("tcp://127.0.0.1:{port}")))
            .await
            .unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        writer
            .send(&batch(&["real\nforged admin login\r\0", "next"]))
            .await
            .unwrap();
        let expected = "real\\nforged admin login\\r\\0\nnext\n";
        assert_eq!(read_exactly(&mut conn, expected.len()).await, expected);
    }
}
