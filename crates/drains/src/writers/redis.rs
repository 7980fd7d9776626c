//! `redis://host[:port][/db]?key=K&limit=N` drains (Logyard's history
//! drains): each batch is one pipeline, `LPUSH K v1 … vn` then
//! `LTRIM K 0 N-1`, so the list holds the newest N entries, newest first.
//! Values are the drain's format rendering, Logyard's JSON records by
//! default, each at most `max_record` bytes; one pipeline carries at most
//! about 1 MiB of them. Values are list elements, not lines, so line
//! breaks in them are kept as they are.
//!
//! The connection goes to the address the drain's policy allowed (the
//! host is resolved here, not by the redis client), with the database
//! selected and user/password from the URL if any. Connection problems,
//! timeouts and transient server states are [`WriteError::Retry`];
//! authentication failures, a key holding something other than a list, or
//! missing permissions are [`WriteError::Fatal`].

use std::sync::Arc;

use ::redis::aio::MultiplexedConnection;
use ::redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ErrorKind, RedisConnectionInfo,
    RedisError,
};
use envelope::Entry;

use super::encode::LineEncoder;
use super::stream::peer_name;
use super::{DrainWriter, SendFuture, WriteError, WriterContext, CONNECT_TIMEOUT, WRITE_TIMEOUT};
use crate::format::Format;
use crate::spec::RedisTarget;

struct RedisWriter {
    connection: MultiplexedConnection,
    /// `redis host (addr)`, for messages.
    target: String,
    key: String,
    limit: usize,
    values: LineEncoder,
    max_bytes: usize,
}

pub(super) async fn connect(
    ctx: &WriterContext,
    redis: &RedisTarget,
) -> Result<Box<dyn DrainWriter>, WriteError> {
    let (username, password) = match super::userinfo(&ctx.url.raw) {
        Some((user, password)) => (Some(user).filter(|u| !u.is_empty()), password),
        None => (None, None),
    };
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(WRITE_TIMEOUT);
    let mut errors = Vec::new();
    for addr in super::resolve(ctx, &redis.endpoint).await? {
        let target = format!("redis {}", peer_name(&redis.endpoint.host, addr));
        let info = ConnectionInfo {
            addr: ConnectionAddr::Tcp(addr.ip().to_string(), addr.port()),
            redis: RedisConnectionInfo {
                db: redis.db,
                username: username.clone(),
                password: password.clone(),
                ..Default::default()
            },
        };
        let connected = match ::redis::Client::open(info) {
            Ok(client) => {
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
            }
            Err(e) => Err(e),
        };
        match connected {
            Ok(connection) => {
                tracing::debug!(drain = %ctx.name, %target, "redis drain connected");
                return Ok(Box::new(RedisWriter {
                    connection,
                    target,
                    key: redis.key.clone(),
                    limit: redis.limit.max(1),
                    values: LineEncoder::new(ctx, Format::Json, false),
                    max_bytes: ctx.max_bytes(),
                }));
            }
            Err(e) => match classify(&target, &e) {
                fatal @ WriteError::Fatal(_) => return Err(fatal),
                other => errors.push(other.to_string()),
            },
        }
    }
    Err(WriteError::Retry(errors.join("; ")))
}

fn classify(target: &str, e: &RedisError) -> WriteError {
    let message = format!("{target}: {e}");
    let fatal_code = matches!(
        e.code(),
        Some("WRONGTYPE" | "NOAUTH" | "WRONGPASS" | "NOPERM")
    );
    let fatal_kind = matches!(
        e.kind(),
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig
    );
    if fatal_code || fatal_kind {
        WriteError::Fatal(message)
    } else {
        WriteError::Retry(message)
    }
}

impl RedisWriter {
    async fn send_batch(&mut self, batch: &[Arc<Entry>]) -> Result<usize, WriteError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let mut values: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0;
        for entry in batch {
            let mut value = Vec::new();
            self.values.render(entry, &mut value);
            bytes += value.len();
            values.push(value);
            if bytes >= self.max_bytes {
                break;
            }
        }
        let n = values.len();
        let mut pipe = ::redis::pipe();
        pipe.cmd("LPUSH").arg(&self.key).arg(values).ignore();
        pipe.cmd("LTRIM")
            .arg(&self.key)
            .arg(0)
            .arg(self.limit.saturating_sub(1))
            .ignore();
        pipe.query_async::<()>(&mut self.connection)
            .await
            .map(|()| n)
            .map_err(|e| classify(&self.target, &e))
    }
}

impl DrainWriter for RedisWriter {
    fn send<'a>(&'a mut self, batch: &'a [Arc<Entry>]) -> SendFuture<'a> {
        Box::pin(self.send_batch(batch))
    }
}

#[cfg(test)]
mod tests {
    use std::process::Stdio;
    use std::time::Duration;

    use tokio::process::{Child, Command};

    use super::super::testutil::{batch, ctx, err_text};
    use super::super::{connect, WriteError};

    /// A throwaway `redis-server` on a free loopback port, killed on drop;
    /// `None` (with a note) when it is not installed, outside CI: with
    /// `CI=true` a missing server fails the test.
    async fn redis_server() -> Option<(Child, u16)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                super::super::testutil::missing_program("redis-server", &e);
                return None;
            }
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some((child, port));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not start on port {port}");
    }

    async fn list(port: u16, db: i64, key: &str) -> Vec<String> {
        let client = ::redis::Client::open(format!("redis://127.0.0.1:{port}/{db}")).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        ::redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn lpush_and_trim_to_the_newest() {
        let Some((_server, port)) = redis_server().await else {
            return;
        };
        let url = format!("redis://127.0.0.1:{port}/2?key=hist&limit=3");
        let mut writer = connect(&ctx(&url)).await.unwrap();
        writer.send(&batch(&["a", "b"])).await.unwrap();
        writer.send(&batch(&["c", "d", "e"])).await.unwrap();
        let values = list(port, 2, "hist").await;
        assert_eq!(values.len(), 3);
        let texts: Vec<String> = values
            .iter()
            .map(|v| {
                serde_json::from_str::<serde_json::Value>(v).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(texts, ["e", "d", "c"]);

        // A key holding something else can never work.
        let client = ::redis::Client::open(format!("redis://127.0.0.1:{port}/2")).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let () = ::redis::cmd("SET")
            .arg("taken")
            .arg("x")
            .query_async(&mut conn)
            .await
            .unwrap();
        let url = format!("redis://127.0.0.1:{port}/2?key=taken");
        let mut writer = connect(&ctx(&url)).await.unwrap();
        let err = err_text(writer.send(&batch(&["a"])).await);
        assert!(matches!(err, WriteError::Fatal(_)), "{err:?}");
        assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    }

    #[tokio::test]
    async fn no_server_is_retry() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = err_text(connect(&ctx(&format!("redis://127.0.0.1:{port}"))).await);
        assert!(matches!(err, WriteError::Retry(_)), "{err:?}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }
}
