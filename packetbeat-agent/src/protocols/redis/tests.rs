//! Stream-level tests: byte fixtures fed through [`RedisState`] the way the flow layer does (the
//! unconsumed tail is presented again with the next bytes), one per feature of the decoder.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{RedisConfig, RedisState};
use crate::event::{Status, Transaction};
use crate::protocols::testing::StreamHarness;
use crate::protocols::{ConnInfo, Direction};
use crate::time::Timestamp;

const C2S: Direction = Direction::ToServer;
const S2C: Direction = Direction::ToClient;

/// The flow layer, reduced to what the protocol sees.
type Harness = StreamHarness<RedisState>;

impl Harness {
    fn new(cfg: RedisConfig) -> Self {
        Self::with(
            RedisState::new(Arc::new(cfg)),
            ConnInfo {
                client_ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
                client_port: 40000,
                server_ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
                server_port: 6379,
            },
        )
    }

    fn default() -> Self {
        Self::new(RedisConfig::default())
    }

    fn at_ms(&mut self, ms: u64) -> &mut Self {
        self.ts = Timestamp(1_700_000_000_000_000_000 + ms * 1_000_000);
        self
    }
}

/// A RESP request array of bulk strings.
fn cmd(args: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    v
}

fn field<'a>(tx: &'a Transaction, key: &str) -> &'a Value {
    tx.fields.get(key).unwrap_or(&Value::Null)
}

/// `method | resource | query | return value or error | status`, one line per transaction.
fn summary(out: &[Transaction]) -> Vec<String> {
    out.iter()
        .map(|t| {
            let value = match t.status {
                Status::Ok => field(t, "redis.return_value"),
                Status::Error => field(t, "redis.error"),
            };
            format!(
                "{} | {} | {} | {} | {}",
                t.method.as_deref().unwrap_or("-"),
                field(t, "resource").as_str().unwrap_or("-"),
                t.query.as_deref().unwrap_or("-"),
                value.as_str().unwrap_or("-"),
                t.status.as_str()
            )
        })
        .collect()
}

#[test]
fn session_set_get_and_error_fields() {
    let mut h = Harness::default();
    let set = cmd(&["set", "key3", "me"]);
    h.at_ms(0).feed(C2S, &set).at_ms(2).feed(S2C, b"+OK\r\n");
    h.at_ms(3).feed(C2S, &cmd(&["get", "key3"])).at_ms(4).feed(S2C, b"$2\r\nme\r\n");
    h.at_ms(5).feed(C2S, &cmd(&["llen", "key3"]));
    h.at_ms(6).feed(S2C, b"-ERR Operation against a key holding the wrong kind of value\r\n");
    assert_eq!(
        summary(&h.out),
        [
            "SET | key3 | set key3 me | OK | OK",
            "GET | key3 | get key3 | me | OK",
            "LLEN | key3 | llen key3 | ERR Operation against a key holding the wrong kind of value | Error",
        ]
    );
    let tx = &h.out[0];
    assert_eq!(tx.kind, "redis");
    assert_eq!(tx.request_bytes, Some(set.len() as u64));
    assert_eq!(tx.response_bytes, Some(5));
    assert_eq!(tx.end.and_then(|e| e.since(tx.start.unwrap())), Some(2_000_000));
    assert_eq!(field(tx, "event.action"), "redis.set");
    assert_eq!(field(tx, "event.outcome"), &Value::Null);
    assert_eq!(field(&h.out[2], "event.outcome"), "failure");
    assert_eq!((h.stats.transactions, h.stats.parse_errors), (3, 0));
}

#[test]
fn arrays_nulls_and_any_command() {
    let mut h = Harness::default();
    h.feed(C2S, &cmd(&["lrange", "l", "0", "-1"])).feed(S2C, b"*3\r\n$1\r\na\r\n$-1\r\n:7\r\n");
    h.feed(C2S, &cmd(&["get", "missing"])).feed(S2C, b"$-1\r\n");
    h.feed(C2S, &cmd(&["keys", "none*"])).feed(S2C, b"*0\r\n");
    h.feed(C2S, &cmd(&["FT.SEARCH", "idx", "@t:{x}"])).feed(S2C, b"*2\r\n:1\r\n*2\r\n$1\r\nk\r\n*0\r\n");
    h.feed(C2S, &cmd(&["config", "get", "maxmemory"])).feed(S2C, b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
    h.feed(C2S, &cmd(&["PING"])).feed(S2C, b"+PONG\r\n");
    assert_eq!(
        summary(&h.out),
        [
            "LRANGE | l | lrange l 0 -1 | [a, nil, 7] | OK",
            "GET | missing | get missing | nil | OK",
            "KEYS | none* | keys none* | [] | OK",
            "FT.SEARCH | idx | FT.SEARCH idx @t:{x} | [1, [k, []]] | OK",
            "CONFIG GET | maxmemory | config get maxmemory | [maxmemory, 0] | OK",
            "PING | - | PING | PONG | OK",
        ]
    );
    assert_eq!(field(&h.out[4], "event.action"), "redis.config get");
}

#[test]
fn inline_commands() {
    let mut h = Harness::default();
    h.feed(C2S, b"PING\r\n").feed(S2C, b"+PONG\r\n");
    h.feed(C2S, b"\r\nset greeting \"hello world\"\n").feed(S2C, b"+OK\r\n");
    assert_eq!(summary(&h.out), ["PING | - | PING | PONG | OK", "SET | greeting | set greeting hello world | OK | OK"]);
    // The empty line before it belongs to no message.
    assert_eq!(h.out[1].request_bytes, Some(27));
}

#[test]
fn resp3_types_render() {
    let mut h = Harness::default();
    h.feed(C2S, &cmd(&["HELLO", "3"]));
    h.feed(S2C, b"%3\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n");
    for (reply, expected) in [
        (&b"_\r\n"[..], "nil"),
        (b"#t\r\n", "true"),
        (b",3.14\r\n", "3.14"),
        (b",-inf\r\n", "-inf"),
        (b"(3492890328409238509324850943850943825024385\r\n", "3492890328409238509324850943850943825024385"),
        (b"=15\r\ntxt:Some string\r\n", "Some string"),
        (b"~2\r\n+a\r\n#f\r\n", "[a, false]"),
        (b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n", "[2]"),
        (b"*2\r\n|1\r\n+ttl\r\n:3\r\n:1\r\n:2\r\n", "[1, 2]"),
        (b"$?\r\n;4\r\nHell\r\n;2\r\no!\r\n;0\r\n", "Hello!"),
        (b"*?\r\n:1\r\n%?\r\n+a\r\n:2\r\n.\r\n.\r\n", "[1, {a: 2}]"),
    ] {
        h.feed(C2S, &cmd(&["x"])).feed(S2C, reply);
        assert_eq!(
            h.out.last().map(|t| field(t, "redis.return_value").clone()),
            Some(Value::from(expected)),
            "{reply:?}"
        );
    }
    h.feed(C2S, &cmd(&["x"])).feed(S2C, b"!21\r\nSYNTAX invalid syntax\r\n");
    assert_eq!(summary(&h.out)[0], "HELLO | 3 | HELLO 3 | {server: redis, proto: 3, modules: []} | OK");
    assert_eq!(summary(&h.out).last().unwrap(), "X | - | x | SYNTAX invalid syntax | Error");
    assert_eq!(h.stats.parse_errors, 0);
}

/// Requests and replies of a RESP2 pub/sub session; pushed messages interleave with replies.
fn pubsub_resp2() -> (Vec<u8>, Vec<u8>, Vec<&'static str>) {
    let reqs =
        [cmd(&["SUBSCRIBE", "news", "sport"]), cmd(&["PING"]), cmd(&["UNSUBSCRIBE"]), cmd(&["GET", "k"])].concat();
    let replies = [
        &b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"[..],
        b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:2\r\n",
        b"*3\r\n$7\r\nmessage\r\n$5\r\nsport\r\n$4\r\ngoal\r\n",
        b"*2\r\n$4\r\npong\r\n$0\r\n\r\n",
        b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nlater\r\n",
        b"*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n",
        b"*3\r\n$11\r\nunsubscribe\r\n$5\r\nsport\r\n:0\r\n",
        b"$1\r\nv\r\n",
    ]
    .concat();
    let expected = vec![
        "SUBSCRIBE | news | SUBSCRIBE news sport | [subscribe, news, 1], [subscribe, sport, 2] | OK",
        "PING | - | PING | [pong, ] | OK",
        "UNSUBSCRIBE | - | UNSUBSCRIBE | [unsubscribe, news, 1], [unsubscribe, sport, 0] | OK",
        "GET | k | GET k | v | OK",
    ];
    (reqs, replies, expected)
}

#[test]
fn pubsub_resp2_pushes_are_not_replies() {
    let (reqs, replies, expected) = pubsub_resp2();
    let mut h = Harness::default();
    h.feed(C2S, &reqs).feed(S2C, &replies);
    assert_eq!(summary(&h.out), expected);
    assert_eq!((h.stats.unmatched_responses, h.stats.unmatched_requests), (0, 0));
}

/// RESP3: confirmations and messages are pushes; ordinary commands work while subscribed.
fn pubsub_resp3() -> (Vec<u8>, Vec<u8>, Vec<&'static str>) {
    let reqs =
        [cmd(&["HELLO", "3"]), cmd(&["SUBSCRIBE", "ch"]), cmd(&["GET", "k"]), cmd(&["PUBLISH", "ch", "m"])].concat();
    let replies = [
        &b"%1\r\n$5\r\nproto\r\n:3\r\n"[..],
        b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
        b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n",
        b"$1\r\nv\r\n",
        b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n",
        b":1\r\n",
    ]
    .concat();
    let expected = vec![
        "HELLO | 3 | HELLO 3 | {proto: 3} | OK",
        "SUBSCRIBE | ch | SUBSCRIBE ch | [subscribe, ch, 1] | OK",
        "GET | k | GET k | v | OK",
        "PUBLISH | ch | PUBLISH ch m | 1 | OK",
    ];
    (reqs, replies, expected)
}

#[test]
fn pubsub_resp3_push_messages() {
    let (reqs, replies, expected) = pubsub_resp3();
    let mut h = Harness::default();
    h.feed(C2S, &reqs).feed(S2C, &replies);
    assert_eq!(summary(&h.out), expected);
}

fn multi_exec() -> (Vec<u8>, Vec<u8>, Vec<&'static str>) {
    let reqs =
        [cmd(&["MULTI"]), cmd(&["SET", "a", "1"]), cmd(&["INCR", "a"]), cmd(&["LPOP", "a"]), cmd(&["EXEC"])].concat();
    let replies =
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n:2\r\n-WRONGTYPE Operation against a key\r\n".to_vec();
    let expected = vec![
        "MULTI | - | MULTI | OK | OK",
        "SET | a | SET a 1 | QUEUED | OK",
        "INCR | a | INCR a | QUEUED | OK",
        "LPOP | a | LPOP a | QUEUED | OK",
        "EXEC | - | EXEC | [OK, 2, WRONGTYPE Operation against a key] | OK",
    ];
    (reqs, replies, expected)
}

#[test]
fn multi_exec_transaction() {
    let (reqs, replies, expected) = multi_exec();
    let mut h = Harness::default();
    h.feed(C2S, &reqs).feed(S2C, &replies);
    assert_eq!(summary(&h.out), expected);
}

#[test]
fn monitor_lines_are_not_replies() {
    let mut h = Harness::default();
    h.feed(C2S, &cmd(&["MONITOR"])).feed(S2C, b"+OK\r\n");
    h.feed(S2C, b"+1339518083.107412 [0 127.0.0.1:60866] \"keys\" \"*\"\r\n+1339518087.877697 [0 127.0.0.1:60866] \"dbsize\"\r\n");
    h.feed(C2S, &cmd(&["RESET"])).feed(S2C, b"+1339518088.1 [0 127.0.0.1:1] \"get\" \"x\"\r\n+RESET\r\n");
    h.feed(C2S, &cmd(&["GET", "x"])).feed(S2C, b"$1\r\n1\r\n");
    assert_eq!(
        summary(&h.out),
        ["MONITOR | - | MONITOR | OK | OK", "RESET | - | RESET | RESET | OK", "GET | x | GET x | 1 | OK"]
    );
}

fn pipelined(n: usize) -> (Vec<u8>, Vec<u8>) {
    let mut reqs = Vec::new();
    let mut replies = Vec::new();
    for i in 0..n {
        reqs.extend(cmd(&["SET", &format!("key:{i}"), "xxx"]));
        reqs.extend(cmd(&["GET", &format!("key:{i}")]));
        replies.extend_from_slice(b"+OK\r\n$3\r\nxxx\r\n");
    }
    (reqs, replies)
}

#[test]
fn pipelining_hundreds_in_flight_coalesced_replies() {
    let (reqs, replies) = pipelined(300);
    let mut h = Harness::default();
    h.feed(C2S, &reqs);
    assert_eq!(h.state.pending_requests(), 600);
    h.feed(S2C, &replies);
    assert_eq!(h.out.len(), 600);
    assert_eq!(summary(&h.out)[598], "SET | key:299 | SET key:299 xxx | OK | OK");
    assert_eq!(summary(&h.out)[599], "GET | key:299 | GET key:299 | xxx | OK");
    assert_eq!(h.state.pending_requests(), 0);
}

/// Every stream, split in two at every byte boundary (and fed one byte at a time), gives the same
/// transactions.
#[test]
fn any_split_gives_identical_transactions() {
    let (pr, pp) = pipelined(3);
    let fixtures = [pubsub_resp2(), pubsub_resp3(), multi_exec(), (pr, pp, vec![])];
    for (reqs, replies, _) in fixtures {
        let mut whole = Harness::default();
        whole.feed(C2S, &reqs).feed(S2C, &replies);
        let want = summary(&whole.out);
        assert!(!want.is_empty());
        for (dir, stream) in [(C2S, &reqs), (S2C, &replies)] {
            for cut in 0..=stream.len() {
                let mut h = Harness::default();
                let (first, second) = stream.split_at(cut);
                if dir == S2C {
                    h.feed(C2S, &reqs);
                }
                h.feed(dir, first).feed(dir, second);
                if dir == C2S {
                    h.feed(S2C, &replies);
                }
                assert_eq!(summary(&h.out), want, "cut {cut} of {dir:?}");
                assert_eq!(h.stats.parse_errors, 0);
            }
        }
        let mut h = Harness::default();
        for b in &reqs {
            h.feed(C2S, std::slice::from_ref(b));
        }
        for b in &replies {
            h.feed(S2C, std::slice::from_ref(b));
        }
        assert_eq!(summary(&h.out), want);
        assert!(h.max_buffered < 40, "only header lines are buffered");
    }
}

#[test]
fn large_values_stream_without_buffering() {
    let value = "v".repeat(2_000_000);
    let mut h = Harness::default();
    let set = cmd(&["SET", "big", &value]);
    for chunk in set.chunks(1448) {
        h.feed(C2S, chunk);
    }
    h.feed(S2C, b"+OK\r\n");
    let reply = format!("${}\r\n{value}\r\n", value.len());
    h.feed(C2S, &cmd(&["GET", "big"]));
    for chunk in reply.as_bytes().chunks(1448) {
        h.feed(S2C, chunk);
    }
    assert!(h.max_buffered < 64, "buffered {}", h.max_buffered);
    assert_eq!(h.out.len(), 2);
    assert_eq!(h.out[0].request_bytes, Some(set.len() as u64));
    assert_eq!(h.out[1].response_bytes, Some(reply.len() as u64));
    assert_eq!(field(&h.out[1], "redis.return_value").as_str().map(str::len), Some(super::message::REDIS_MAX_TEXT_LEN));
    assert_eq!(h.stats.oversize_messages, 2);
}

#[test]
fn gap_inside_bulk_payload_keeps_the_reply_with_a_note() {
    let mut h = Harness::default();
    h.feed(C2S, &cmd(&["GET", "k"])).feed(S2C, b"$10\r\n012");
    h.gap(S2C, 4).feed(S2C, b"789\r\n");
    assert_eq!(summary(&h.out), ["GET | k | GET k | 012789 | OK"]);
    assert_eq!(h.out[0].notes, ["Packet loss while capturing the response"]);
    assert_eq!(h.out[0].response_bytes, Some(17));
    h.feed(C2S, b"*2\r\n$3\r\nSET\r\n$1\r\nk\r\n");
    assert_eq!(h.stats.gaps, 1);
}

#[test]
fn lost_replies_publish_waiting_requests_and_resync() {
    let mut h = Harness::default();
    h.at_ms(0).feed(C2S, &[cmd(&["GET", "a"]), cmd(&["GET", "b"])].concat());
    h.at_ms(1).feed(S2C, b"*2\r\n$1\r\nx");
    h.gap(S2C, 100);
    assert_eq!(summary(&h.out), ["GET | a | GET a | - | Error", "GET | b | GET b | - | Error"]);
    assert!(h.out.iter().all(|t| t.notes == ["Packet loss while capturing the response"] && t.end.is_none()));
    // The rest of the lost reply stream, then a new command.
    h.at_ms(2).feed(S2C, b"\r\n$1\r\ny\r\n:5\r\n");
    h.at_ms(3).feed(C2S, &cmd(&["INCR", "c"])).at_ms(4).feed(S2C, b":6\r\n");
    assert_eq!(summary(&h.out)[2], "INCR | c | INCR c | 6 | OK");
    assert_eq!(h.out.len(), 3);
    assert_eq!(h.stats.parse_errors, 0);
}

#[test]
fn midstream_pickup_resyncs_on_both_sides() {
    let mut h = Harness::default();
    h.at_ms(0).gap(C2S, 0).gap(S2C, 0);
    // The tail of an unseen request, then a whole one.
    h.at_ms(1).feed(C2S, b"ey\r\n$2\r\nvv\r\n");
    h.at_ms(2).feed(S2C, b"+OK\r\n");
    h.at_ms(3).feed(C2S, b"*2\r\n$3\r\nGET\r\n$2\r\nkk\r\n");
    h.at_ms(4).feed(S2C, b"$2\r\nvv\r\n");
    assert_eq!(summary(&h.out), ["GET | kk | GET kk | vv | OK"]);
    assert_eq!(h.stats.parse_errors, 0);
    assert_eq!(h.stats.unmatched_responses, 1);
}

#[test]
fn lost_requests_do_not_shift_the_pairing() {
    let mut h = Harness::default();
    h.at_ms(0).feed(C2S, &cmd(&["GET", "a"]));
    h.gap(C2S, 30);
    h.at_ms(1).feed(S2C, b"$1\r\n1\r\n");
    h.at_ms(2).feed(S2C, b"$1\r\n2\r\n");
    h.at_ms(3).feed(C2S, &cmd(&["GET", "c"])).at_ms(4).feed(S2C, b"$1\r\n3\r\n");
    assert_eq!(summary(&h.out), ["GET | a | GET a | 1 | OK", "GET | c | GET c | 3 | OK"]);
    assert_eq!(h.stats.unmatched_responses, 1);
}

#[test]
fn queue_limits_evict_and_skip_their_replies() {
    let mut h = Harness::new(RedisConfig { queue_max_messages: 2, ..RedisConfig::default() });
    h.feed(C2S, &[cmd(&["GET", "1"]), cmd(&["GET", "2"]), cmd(&["GET", "3"]), cmd(&["GET", "4"])].concat());
    h.feed(S2C, b":1\r\n:2\r\n:3\r\n:4\r\n");
    assert_eq!(summary(&h.out), ["GET | 3 | GET 3 | 3 | OK", "GET | 4 | GET 4 | 4 | OK"]);
    assert_eq!((h.stats.queue_full, h.stats.unmatched_requests, h.stats.unmatched_responses), (2, 2, 2));
    let mut h = Harness::new(RedisConfig { queue_max_bytes: 10, ..RedisConfig::default() });
    h.feed(C2S, &[cmd(&["GET", "aaaa"]), cmd(&["GET", "bbbb"])].concat()).feed(S2C, b":1\r\n:2\r\n");
    assert_eq!(summary(&h.out), ["GET | bbbb | GET bbbb | 2 | OK"]);
}

#[test]
fn unanswered_requests_expire_and_unmatched_replies_are_dropped() {
    let mut h = Harness::new(RedisConfig { transaction_timeout: Duration::from_secs(1), ..RedisConfig::default() });
    h.feed(S2C, b"+OK\r\n");
    assert_eq!(h.stats.unmatched_responses, 1);
    h.at_ms(0).feed(C2S, &cmd(&["BLPOP", "q", "0"]));
    h.at_ms(500).expire();
    assert_eq!(h.state.pending_requests(), 1);
    h.at_ms(1500).expire();
    assert_eq!((h.state.pending_requests(), h.stats.unmatched_requests), (0, 1));
    h.feed(C2S, &cmd(&["GET", "x"])).close();
    assert_eq!((h.out.len(), h.stats.unmatched_requests), (0, 2));
}

#[test]
fn send_request_and_response() {
    let mut h = Harness::new(RedisConfig { send_request: true, send_response: true, ..RedisConfig::default() });
    h.feed(C2S, &cmd(&["get", "key3"])).feed(S2C, b"$2\r\nme\r\n");
    assert_eq!((h.out[0].request.as_deref(), h.out[0].response.as_deref()), (Some("get key3"), Some("me")));
}

#[test]
fn bad_input_is_counted_and_resynchronised() {
    let mut h = Harness::default();
    // A 2 GiB length prefix, then a valid command after the next CRLF.
    h.feed(C2S, b"*1\r\n$2147483648\r\n");
    h.feed(C2S, &cmd(&["GET", "a"])).feed(S2C, b"$2147483648\r\n:1\r\n");
    assert_eq!(summary(&h.out), ["GET | a | GET a | 1 | OK"]);
    assert_eq!(h.stats.parse_errors, 2);
    // Deep nesting.
    let mut h = Harness::default();
    h.feed(C2S, &cmd(&["GET", "a"])).feed(S2C, &b"*1\r\n".repeat(10_000));
    assert_eq!(h.stats.parse_errors, 1);
    assert!(h.out.is_empty());
    // A request that is not an array of bulk strings.
    let mut h = Harness::default();
    h.feed(C2S, b"*1\r\n:5\r\n");
    assert_eq!(h.stats.parse_errors, 1);
}

#[test]
fn random_bytes_never_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"*$:+-_#,(!=%~>|;.?\r\n0123456789-abcSETGET ";
    for round in 0..400 {
        let mut h = Harness::default();
        let len = usize::try_from(next() % 600).unwrap();
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                if round % 2 == 0 {
                    u8::try_from(r & 0xff).unwrap()
                } else {
                    alphabet[usize::try_from(r % alphabet.len() as u64).unwrap()]
                }
            })
            .collect();
        let mut rest = &bytes[..];
        let mut dir = C2S;
        while !rest.is_empty() {
            let n = usize::try_from(next() % 40).unwrap().min(rest.len()).max(1);
            if next() % 17 == 0 {
                h.gap(dir, u32::try_from(next() % 50).unwrap());
            }
            h.feed(dir, &rest[..n]);
            rest = &rest[n..];
            dir = if next() % 2 == 0 { C2S } else { S2C };
        }
        h.expire().close();
        assert!(h.max_buffered <= super::parser::REDIS_MAX_LINE_LEN + 64);
    }
}
