//! A request and its reply → [`Transaction`] with Packetbeat 8.x's Redis fields, and what a request
//! names: its command (`method`) and key (`resource`).
//!
//! Any command is accepted (Packetbeat only recognised a fixed list): the first argument is the
//! command; for container commands (`CONFIG GET`, `CLIENT LIST`, `ACL SETUSER`...) the first two
//! arguments are, as Packetbeat does for the containers it knew, and the key is the next argument.

use super::config::RedisConfig;
use super::message::RedisMessage;
use crate::event::{Status, Transaction};

/// Commands whose second argument is a subcommand.
const CONTAINER_COMMANDS: &[&str] = &[
    "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG", "FUNCTION", "LATENCY", "MEMORY", "MODULE", "SCRIPT",
    "XGROUP", "XINFO",
];

/// `error.message` note when bytes of the request were lost.
pub const NOTE_REQUEST_LOSS: &str = "Packet loss while capturing the request";
/// `error.message` note when bytes of the reply were lost (or the reply itself).
pub const NOTE_RESPONSE_LOSS: &str = "Packet loss while capturing the response";

/// What a request names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// `method`: the command, upper case (two words for a container command).
    pub method: String,
    /// `resource`: the key, when the command has an argument after its name.
    pub resource: Option<String>,
}

impl Command {
    /// Reads the command of a request.
    #[must_use]
    pub fn of(req: &RedisMessage) -> Self {
        let word = |i: usize| req.head.get(i).map(|(t, _)| t.to_ascii_uppercase());
        let Some(first) = word(0) else {
            return Self::default();
        };
        let two_words = CONTAINER_COMMANDS.contains(&first.as_str()) && req.elements > 1;
        let (method, key_at) = match (two_words, word(1)) {
            (true, Some(second)) => (format!("{first} {second}"), 2),
            _ => (first, 1),
        };
        Self { method, resource: req.head.get(key_at).map(|(t, _)| t.clone()) }
    }

    /// The command name alone (first word), for protocol-state decisions.
    #[must_use]
    pub fn name(&self) -> &str {
        self.method.split(' ').next().unwrap_or_default()
    }
}

/// Builds the transaction of `req` answered by `reply` (`None`: the reply was lost). The texts are
/// moved into the event; only what `send_request`/`send_response` publish a second time is copied.
#[must_use]
pub fn build_transaction(
    req: RedisMessage,
    cmd: Command,
    reply: Option<RedisMessage>,
    cfg: &RedisConfig,
) -> Transaction {
    let mut action = String::with_capacity("redis.".len() + cmd.method.len());
    action.push_str("redis.");
    action.extend(cmd.method.chars().map(|c| c.to_ascii_lowercase()));
    let mut tx = Transaction {
        kind: "redis",
        ts: req.ts,
        start: Some(req.ts),
        end: reply.as_ref().map(|r| r.ts),
        request_bytes: Some(req.size),
        response_bytes: reply.as_ref().map(|r| r.size),
        request: cfg.send_request.then(|| req.text.clone()),
        method: Some(cmd.method),
        query: Some(req.text),
        ..Transaction::default()
    };
    if let Some(r) = cmd.resource {
        tx.fields.insert("resource", r);
    }
    tx.fields.insert("event.action", action);
    if req.lost_bytes {
        tx.notes.push(NOTE_REQUEST_LOSS.to_owned());
    }
    if reply.as_ref().is_none_or(|r| r.lost_bytes) {
        tx.notes.push(NOTE_RESPONSE_LOSS.to_owned());
    }
    match reply {
        Some(r) => {
            if cfg.send_response {
                tx.response = Some(r.text.clone());
            }
            if r.is_error {
                tx.status = Status::Error;
                tx.fields.insert("redis.error", r.text);
                tx.fields.insert("event.outcome", "failure");
            } else {
                tx.status = Status::Ok;
                tx.fields.insert("redis.return_value", r.text);
            }
        }
        None => tx.status = Status::Error,
    }
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(args: &[&str]) -> RedisMessage {
        RedisMessage {
            head: args.iter().take(3).map(|a| ((*a).to_owned(), false)).collect(),
            elements: args.len() as u64,
            text: args.join(" "),
            ..RedisMessage::default()
        }
    }

    #[test]
    fn commands_and_keys() {
        assert_eq!(
            Command::of(&req(&["set", "key3", "me"])),
            Command { method: "SET".into(), resource: Some("key3".into()) }
        );
        assert_eq!(Command::of(&req(&["PING"])), Command { method: "PING".into(), resource: None });
        assert_eq!(Command::of(&req(&["config", "get", "maxmemory"])).method, "CONFIG GET");
        assert_eq!(Command::of(&req(&["config", "get", "maxmemory"])).resource.as_deref(), Some("maxmemory"));
        assert_eq!(Command::of(&req(&["COMMAND"])).method, "COMMAND");
        assert_eq!(Command::of(&req(&["FT.SEARCH", "idx", "q"])).method, "FT.SEARCH");
        assert_eq!(Command::of(&req(&[])).method, "");
    }

    #[test]
    fn fields_of_ok_error_and_lost_replies() {
        let cfg = RedisConfig { send_request: true, send_response: true, ..RedisConfig::default() };
        let q = req(&["llen", "key3"]);
        let cmd = Command::of(&q);
        let err = RedisMessage { is_error: true, text: "ERR wrong kind".into(), size: 17, ..RedisMessage::default() };
        let tx = build_transaction(q.clone(), cmd.clone(), Some(err), &cfg);
        assert_eq!(tx.status, Status::Error);
        assert_eq!(tx.fields["redis.error"], "ERR wrong kind");
        assert_eq!(tx.fields["event.outcome"], "failure");
        assert_eq!(tx.fields["event.action"], "redis.llen");
        assert_eq!(tx.request.as_deref(), Some("llen key3"));
        assert_eq!(tx.response.as_deref(), Some("ERR wrong kind"));
        let ok = RedisMessage { text: "3".into(), ..RedisMessage::default() };
        let tx = build_transaction(q.clone(), cmd.clone(), Some(ok), &RedisConfig::default());
        assert_eq!((tx.status, tx.fields["redis.return_value"].as_str()), (Status::Ok, Some("3")));
        assert!(tx.request.is_none() && tx.response.is_none() && tx.notes.is_empty());
        let tx = build_transaction(q, cmd, None, &RedisConfig::default());
        assert_eq!(tx.notes, vec![NOTE_RESPONSE_LOSS]);
        assert_eq!(tx.end, None);
    }
}
