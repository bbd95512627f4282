//! A Server-Sent Events parser (the WHATWG event-stream format): fed the body's bytes as they
//! arrive, it yields each complete message. Comments (keep-alives) are skipped; `id` persists
//! across messages as the spec says, so the caller always knows what to resume from.

/// One dispatched message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    /// The last event id seen (this message's, or an earlier one's).
    pub id: Option<String>,
    /// The `event` field; `message` when absent.
    pub event: String,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    last_id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    /// A `\r` ended the last line: a `\n` right after it belongs to it.
    after_cr: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last event id seen.
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Feeds bytes; returns the messages they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseMessage> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.buffer);
                    if let Some(m) = self.line(&String::from_utf8_lossy(&line)) {
                        out.push(m);
                    }
                }
                _ => self.buffer.push(b),
            }
        }
        out
    }

    fn line(&mut self, line: &str) -> Option<SseMessage> {
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            return data.map(|data| SseMessage {
                id: self.last_id.clone(),
                event: event.unwrap_or_else(|| "message".into()),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_anywhere_are_reassembled() {
        let stream = b": keep-alive\n\nid: 1\nevent: queued\ndata: {\"a\":\r\ndata: 1}\r\n\r\nid: 2\rdata: x\r\r";
        for split in 0..stream.len() {
            let mut p = SseParser::new();
            let mut got = p.feed(&stream[..split]);
            got.extend(p.feed(&stream[split..]));
            assert_eq!(
                got,
                vec![
                    SseMessage {
                        id: Some("1".into()),
                        event: "queued".into(),
                        data: "{\"a\":\n1}".into()
                    },
                    SseMessage {
                        id: Some("2".into()),
                        event: "message".into(),
                        data: "x".into()
                    },
                ],
                "split at {split}"
            );
            assert_eq!(p.last_id(), Some("2"));
        }
    }
}
