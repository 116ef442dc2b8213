"""RESP3 client for tests/tests/redis_live.rs: redis-py with protocol=3 (HELLO 3 on every
connection), replies of every RESP3 type, and pub/sub whose confirmations and messages are push
frames. Prints one line per check; exits non-zero when a reply is not what Redis should send."""

import sys
import time

import redis

port = int(sys.argv[1])
r = redis.Redis(host="127.0.0.1", port=port, protocol=3, lib_name=None, lib_version=None)
r.hset("h3py", mapping={"f": "1", "g": "2"})
assert r.hgetall("h3py") == {b"f": b"1", b"g": b"2"}, "map"
r.sadd("s3py", "a", "b")
assert r.smembers("s3py") == {b"a", b"b"}, "set"
r.zadd("z3py", {"m": 1.5})
assert r.zscore("z3py", "m") == 1.5, "double"
assert r.eval("redis.setresp(3); return true", 0) in (True, 1), "boolean"
big = r.eval("redis.setresp(3); return {big_number='1234567890123456789012345678901234567890'}", 0)
assert int(big) == 1234567890123456789012345678901234567890, "big number"
assert "redis_version" in str(r.info("server")), "verbatim"
p = r.pubsub()
p.subscribe("ch3")
deadline = time.time() + 10
got = None
while time.time() < deadline and got is None:
    m = p.get_message(timeout=0.5)
    if m and m["type"] == "subscribe":
        r.publish("ch3", "pushed")
    if m and m["type"] == "message":
        got = m["data"]
assert got == b"pushed", "push message"
p.close()
r.close()
print("resp3 ok")
