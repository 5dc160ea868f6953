//! `msrp-relay listen`: AUTH to a relay and receive messages through it.
//!
//! The first line on stdout is the To-Path a peer must use to reach this listener (its
//! Use-Path, then its own URI, space-separated), ready for `send --to`. Each received SEND is
//! answered with 200 (as Failure-Report asks), each complete message printed or saved under
//! `--save-dir`, and a success REPORT sent when the sender asked for one. Before the relay's
//! grant expires the listener AUTHs again; that gives it a new To-Path, which it announces on
//! stderr (or as a JSON line with `--json`).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use msrp_proto::{ByteRange, FailureReport, Flag, Head, Method, MsrpUri};
use serde::Serialize;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;

use super::{at, random_own_uri, read_password, CommandError, ConnectArgs, Relay};
use crate::client::{AuthExchange, AuthGrant, AuthStep, ClientError, Message, MessageWriter};

/// Without --save-dir, bodies up to this size are kept to be printed.
const KEEP_MAX: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// User name for the relay's Digest AUTH.
    #[arg(long)]
    pub user: String,
    /// File whose first line is the password.
    #[arg(long, value_name = "FILE")]
    pub password_file: PathBuf,
    /// Exit after this many complete messages (0: run until Ctrl-C or SIGTERM).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub count: u64,
    /// Save each message's body in this directory (created if missing), named by its
    /// Message-ID, instead of printing it.
    #[arg(long, value_name = "DIR")]
    pub save_dir: Option<PathBuf>,
    /// Ask the relay for a grant of this many seconds (Expires); default: the relay's choice.
    #[arg(long, value_name = "SECONDS")]
    pub expires: Option<u64>,
}

/// One line of `--json` output.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
enum Event<'a> {
    #[serde(rename_all = "camelCase")]
    Message {
        message_id: &'a str,
        from: &'a str,
        content_type: &'a str,
        size: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        saved_to: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Aborted { message_id: &'a str, size: u64 },
    #[serde(rename_all = "camelCase")]
    Auth {
        to_path: &'a str,
        expires: Option<u64>,
    },
}

/// Where the body of a message being received goes.
enum Sink {
    File(tokio::fs::File, PathBuf),
    Memory(Vec<u8>),
    /// Too large to keep without --save-dir: counted only.
    Dropped,
}

struct Incoming {
    from: String,
    content_type: String,
    received: u64,
    sink: Sink,
}

struct Listener {
    me: MsrpUri,
    writer: MessageWriter,
    save_dir: Option<PathBuf>,
    json: bool,
    incoming: HashMap<Bytes, Incoming>,
    done: u64,
}

pub fn main(args: ListenArgs) -> ExitCode {
    super::run("listen", listen(args))
}

async fn listen(args: ListenArgs) -> Result<(), CommandError> {
    // Installed before anything is printed (a script may signal as soon as it reads the
    // To-Path), and made once, so that a signal arriving while a message is handled is kept.
    let signal_err =
        |source| CommandError::Usage(format!("cannot install a signal handler: {source}"));
    let mut sigint = signal(SignalKind::interrupt()).map_err(signal_err)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(signal_err)?;
    let relay = Relay::from_args(&args.connect)?;
    let password = read_password(&args.password_file)?;
    if let Some(dir) = &args.save_dir {
        std::fs::create_dir_all(dir).map_err(|source| CommandError::WriteFile {
            path: dir.clone(),
            source,
        })?;
    }
    let timeout = relay.timeout;
    let me = random_own_uri(relay.uri.scheme())?;
    let (mut conn, _) = relay.connect().await?;
    let exchange = || {
        AuthExchange::new(
            vec![relay.uri.clone()],
            me.clone(),
            &args.user,
            &password,
            args.expires,
        )
    };
    let auth_step = format!("AUTH to {}", relay.uri);
    let grant = conn
        .auth(
            &relay.uri,
            &me,
            &args.user,
            &password,
            args.expires,
            timeout,
        )
        .await
        .map_err(at(auth_step.clone()))?;
    println!("{}", to_path_line(&grant, &me));
    flush_stdout();
    let mut refresh_at = refresh_time(&grant);

    // The reader runs in a task of its own, so that no read is ever cancelled midway.
    let (reader, writer) = conn.into_split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Message, ClientError>>(16);
    let reader_task = tokio::spawn(async move {
        let mut reader = reader;
        loop {
            let m = reader.next_message().await;
            let failed = m.is_err();
            if tx.send(m).await.is_err() || failed {
                break;
            }
        }
    });
    let mut l = Listener {
        me: me.clone(),
        writer,
        save_dir: args.save_dir.clone(),
        json: args.connect.json,
        incoming: HashMap::new(),
        done: 0,
    };
    // A refresh in progress: the exchange and the tid awaited, with its deadline.
    let mut refreshing: Option<(AuthExchange, msrp_proto::TransactionId, Instant)> = None;
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let result = loop {
        if args.count > 0 && l.done >= args.count {
            break Ok(());
        }
        let auth_deadline = refreshing.as_ref().map_or(far, |r| r.2);
        tokio::select! {
            _ = sigint.recv() => break Ok(()),
            _ = sigterm.recv() => break Ok(()),
            _ = tokio::time::sleep_until(refresh_at.unwrap_or(far)), if refreshing.is_none() && refresh_at.is_some() => {
                let ex = exchange();
                let (tid, frame) = ex.request();
                if let Err(e) = l.writer.write_raw(&frame).await {
                    break Err(at(auth_step.clone())(e));
                }
                refreshing = Some((ex, tid, Instant::now() + timeout));
            }
            _ = tokio::time::sleep_until(auth_deadline), if refreshing.is_some() => {
                break Err(at(auth_step.clone())(ClientError::Timeout(timeout, "the AUTH response")));
            }
            m = rx.recv() => {
                let m = match m {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => break Err(at("receiving")(e)),
                    None => break Err(at("receiving")(ClientError::Closed)),
                };
                if !m.head.is_request() {
                    let Some((mut ex, tid, _)) = refreshing.take() else { continue };
                    if m.head.tid() != &tid {
                        refreshing = Some((ex, tid, Instant::now() + timeout));
                        continue;
                    }
                    match ex.on_response(&m.head) {
                        Ok(AuthStep::Send(tid, frame)) => {
                            if let Err(e) = l.writer.write_raw(&frame).await {
                                break Err(at(auth_step.clone())(e));
                            }
                            refreshing = Some((ex, tid, Instant::now() + timeout));
                        }
                        Ok(AuthStep::Granted(grant)) => {
                            l.announce(&grant);
                            refresh_at = refresh_time(&grant);
                        }
                        Err(e) => break Err(at(auth_step.clone())(e)),
                    }
                    continue;
                }
                if let Err(e) = l.on_request(m).await {
                    break Err(e);
                }
            }
        }
    };
    reader_task.abort();
    result
}

/// The To-Path a peer uses to reach us: our Use-Path, then our URI.
fn to_path_line(grant: &AuthGrant, me: &MsrpUri) -> String {
    grant
        .use_path
        .iter()
        .chain(std::iter::once(me))
        .map(MsrpUri::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// When to AUTH again: at 80% of the grant (none when the relay gave no Expires).
fn refresh_time(grant: &AuthGrant) -> Option<Instant> {
    let secs = grant.expires?;
    Some(Instant::now() + Duration::from_millis(secs.saturating_mul(800)))
}

fn flush_stdout() {
    let _ = std::io::stdout().flush();
}

impl Listener {
    fn announce(&self, grant: &AuthGrant) {
        let line = to_path_line(grant, &self.me);
        if self.json {
            self.emit(&Event::Auth {
                to_path: &line,
                expires: grant.expires,
            });
        } else {
            eprintln!("msrp-relay listen: AUTH renewed; the To-Path is now: {line}");
        }
    }

    fn emit(&self, event: &Event<'_>) {
        if let Ok(line) = serde_json::to_string(event) {
            println!("{line}");
            flush_stdout();
        }
    }

    async fn on_request(&mut self, m: Message) -> Result<(), CommandError> {
        match m.head.method() {
            Some(Method::Send) => self.on_send(m).await,
            // REPORTs are never answered (RFC 4975 §7.1.2).
            Some(Method::Report) => Ok(()),
            _ => self
                .writer
                .respond(&m.head, 501, "Not Implemented")
                .await
                .map_err(at("responding")),
        }
    }

    async fn on_send(&mut self, m: Message) -> Result<(), CommandError> {
        let head = &m.head;
        let mode = head.failure_report();
        let addressed_to_us = head.to_path().last().is_some_and(|u| u == &self.me);
        if !addressed_to_us {
            if mode != FailureReport::No {
                self.writer
                    .respond(head, 481, "Session Does Not Exist")
                    .await
                    .map_err(at("responding"))?;
            }
            return Ok(());
        }
        let id = Bytes::copy_from_slice(head.message_id().unwrap_or(b""));
        let len = m.body.len() as u64;
        let range = head.byte_range().unwrap_or(ByteRange {
            start: 1,
            end: Some(len),
            total: Some(len),
        });
        if !self.incoming.contains_key(&id) {
            let started = self.start(head, &id, range.total).await?;
            self.incoming.insert(id.clone(), started);
        }
        if let Some(inc) = self.incoming.get_mut(&id) {
            write_at(&mut inc.sink, range.start.saturating_sub(1), &m.body).await?;
            inc.received += len;
        }
        if mode == FailureReport::Yes {
            self.writer
                .respond(head, 200, "OK")
                .await
                .map_err(at("responding"))?;
        }
        match m.flag {
            Flag::More => Ok(()),
            Flag::Abort => {
                if let Some(inc) = self.incoming.remove(&id) {
                    // Nothing half-written is left behind under the message's name.
                    if let Sink::File(file, path) = inc.sink {
                        drop(file);
                        let _ = tokio::fs::remove_file(path).await;
                    }
                    let mid = String::from_utf8_lossy(&id);
                    if self.json {
                        self.emit(&Event::Aborted {
                            message_id: &mid,
                            size: inc.received,
                        });
                    } else {
                        eprintln!(
                            "msrp-relay listen: message {mid} aborted by the sender after {} bytes",
                            inc.received
                        );
                    }
                }
                Ok(())
            }
            Flag::Complete => {
                let Some(inc) = self.incoming.remove(&id) else {
                    return Ok(());
                };
                let total = range.total.unwrap_or(inc.received);
                self.finish(&id, inc).await?;
                if head.success_report() {
                    self.writer
                        .report(
                            head.from_path(),
                            &self.me,
                            &id,
                            ByteRange {
                                start: 1,
                                end: Some(total),
                                total: Some(total),
                            },
                            200,
                            "OK",
                        )
                        .await
                        .map_err(at("sending the success REPORT"))?;
                }
                self.done += 1;
                Ok(())
            }
        }
    }

    async fn start(
        &self,
        head: &Head,
        id: &[u8],
        total: Option<u64>,
    ) -> Result<Incoming, CommandError> {
        let sink = match &self.save_dir {
            Some(dir) => {
                let path = dir.join(file_name(id, self.done));
                let file = tokio::fs::File::create(&path).await.map_err(|source| {
                    CommandError::WriteFile {
                        path: path.clone(),
                        source,
                    }
                })?;
                Sink::File(file, path)
            }
            None if total.is_some_and(|t| t > KEEP_MAX) => Sink::Dropped,
            None => Sink::Memory(Vec::new()),
        };
        Ok(Incoming {
            from: head
                .from_path()
                .last()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default(),
            content_type: head
                .content_type()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .unwrap_or_default(),
            received: 0,
            sink,
        })
    }

    async fn finish(&self, id: &[u8], inc: Incoming) -> Result<(), CommandError> {
        let mid = String::from_utf8_lossy(id);
        let size = inc.received;
        let (text, saved_to) = match inc.sink {
            Sink::File(mut f, path) => {
                f.flush().await.map_err(|source| CommandError::WriteFile {
                    path: path.clone(),
                    source,
                })?;
                (None, Some(path.display().to_string()))
            }
            Sink::Memory(body) => (Some(body), None),
            Sink::Dropped => (None, None),
        };
        let is_text = inc.content_type.is_empty()
            || inc.content_type.starts_with("text/")
            || inc.content_type.starts_with("message/");
        let shown = text
            .as_deref()
            .filter(|_| is_text)
            .and_then(|b| std::str::from_utf8(b).ok());
        if self.json {
            self.emit(&Event::Message {
                message_id: &mid,
                from: &inc.from,
                content_type: &inc.content_type,
                size,
                text: shown,
                saved_to,
            });
            return Ok(());
        }
        let what = format!(
            "message {mid} from {} ({size} bytes, {})",
            inc.from, inc.content_type
        );
        match (saved_to, shown) {
            (Some(path), _) => println!("{what} saved to {path}"),
            (None, Some(text)) => println!("{what}:\n{text}"),
            (None, None) if text.is_some() => println!("{what}: not text; use --save-dir"),
            (None, None) => println!("{what}: too large to print; use --save-dir"),
        }
        flush_stdout();
        Ok(())
    }
}

/// Puts a piece at its offset (pieces arrive in order over one connection, but Byte-Range
/// says where each belongs).
async fn write_at(sink: &mut Sink, offset: u64, body: &[u8]) -> Result<(), CommandError> {
    match sink {
        Sink::File(f, path) => {
            let err = |source| CommandError::WriteFile {
                path: path.clone(),
                source,
            };
            f.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(err)?;
            f.write_all(body).await.map_err(err)?;
        }
        Sink::Memory(buf) => {
            let end = offset.saturating_add(body.len() as u64);
            if end > KEEP_MAX {
                *sink = Sink::Dropped;
                return Ok(());
            }
            // Bounded by KEEP_MAX just above.
            let (start, end) = (offset as usize, end as usize);
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[start..end].copy_from_slice(body);
        }
        Sink::Dropped => {}
    }
    Ok(())
}

/// A safe file name from a Message-ID: only `[A-Za-z0-9._+=%-]`, never hidden or `..`.
fn file_name(id: &[u8], n: u64) -> String {
    let mut name: String = id
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"._+=%-".contains(&b) {
                char::from(b)
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        name = format!("message-{}", n + 1);
    }
    if name.starts_with('.') {
        name.insert(0, '_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name(b"87652491", 0), "87652491");
        assert_eq!(file_name(b"a.b-c+d%e=f", 0), "a.b-c+d%e=f");
        assert_eq!(file_name(b"../../etc/passwd", 0), "_.._.._etc_passwd");
        assert_eq!(file_name(b"..", 0), "_..");
        assert_eq!(file_name(b"", 4), "message-5");
        assert_eq!(file_name(b"a/b\\c d", 0), "a_b_c_d");
    }

    #[tokio::test]
    async fn memory_sink_places_pieces_and_gives_up_when_too_large() {
        let mut s = Sink::Memory(Vec::new());
        write_at(&mut s, 5, b"world").await.unwrap();
        write_at(&mut s, 0, b"hello").await.unwrap();
        match &s {
            Sink::Memory(b) => assert_eq!(b, b"helloworld"),
            _ => panic!("still in memory"),
        }
        write_at(&mut s, KEEP_MAX, b"x").await.unwrap();
        assert!(matches!(s, Sink::Dropped));
    }
}
