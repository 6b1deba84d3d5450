#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ from real payloads: the examples in
subjects/examples, rows of the market data in data/ and strategy/strategy.json. Each
seed starts with the selector byte its target reads (see the comment at the top of
fuzz/fuzz_<target>.c). Rerun after changing a payload format; seeds stay under 4 KB.
Usage: fuzz/make_corpus.py"""
import base64
import calendar
import csv
import json
import os
import shutil
import struct
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def mp(v):
    """msgpack, the subset the worker reads: maps, arrays, strings, ints, float64."""
    if v is None:
        return b"\xc0"
    if v is True or v is False:
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        return b"\xd3" + struct.pack(">q", v) if v < 0 else b"\xcf" + struct.pack(">Q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        head = bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)]) \
            if len(b) < 256 else b"\xda" + struct.pack(">H", len(b))
        return head + b
    if isinstance(v, list):
        head = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return head + b"".join(mp(x) for x in v)
    head = bytes([0x80 | len(v)]) if len(v) < 16 else b"\xde" + struct.pack(">H", len(v))
    return head + b"".join(mp(k) + mp(x) for k, x in v.items())


def js(v):
    return json.dumps(v, separators=(",", ":")).encode()


def write(target, name, data):
    assert len(data) < 4096, (target, name, len(data))
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def utc_ms(text, fmt):
    return calendar.timegm(time.strptime(text, fmt)) * 1000


def rows(path, skip_header=True):
    with open(os.path.join(ROOT, "data", path), newline="") as f:
        r = csv.reader(f)
        if skip_header:
            next(r)
        return list(r)


def example(name):
    with open(os.path.join(ROOT, "subjects", "examples", name)) as f:
        return json.load(f)


def candle(tf, ts, o, h, l, c, v):
    return {"symbol": "EUR/USD", "timeframe": tf, "timestamp": ts, "open": float(o),
            "high": float(h), "low": float(l), "close": float(c), "volume": int(v),
            "source": "broker-csv"}


# Real candles: hourly ones from 2020-01-09 (what the examples use) and one-minute ones.
H1 = [candle("1h", utc_ms(r[0], "%Y.%m.%d %H:%M"), *r[1:6])
      for r in rows("EURUSD_H1_2010-10_2021-04.csv")[57330:57350]]
M1 = [candle("1m", utc_ms(r[0], "%d/%m/%Y %H:%M"), *r[1:6])
      for r in rows("EURUSD_M1_2020-01-09_2020-01-20.csv")[600:620]]


def tick_of(k, spread_pips):
    """Ticks derived from one-minute candles: a quote at the open with a realistic spread."""
    bid = k["open"]
    spread = round(spread_pips * 0.0001, 5)
    return {"symbol": "EUR/USD", "timestamp": k["timestamp"] + 17000, "bid": bid,
            "ask": round(bid + spread, 5), "spread": spread, "volume": 0,
            "source": "m1-derived"}


TICKS = [tick_of(k, 0.1 + 0.3 * i) for i, k in enumerate(M1[:6])]
COUNTRY = {"USD": "US", "EUR": "EU"}
EVENTS = []
for d, t, cur, impact, name in rows("events_calendar_sample.csv", skip_header=False):
    ts = utc_ms(d + " " + t, "%Y.%m.%d %H:%M")
    EVENTS.append({"event_id": "%s-%s-%s" % (COUNTRY[cur], name.lower().replace(" ", "-"),
                                             time.strftime("%Y%m%d%H%M", time.gmtime(ts / 1000))),
                   "timestamp": ts, "country": COUNTRY[cur], "event_name": name,
                   "actual": None, "forecast": None, "previous": None,
                   "impact": impact.lower(), "currency_impact": [cur]})


def ingest():
    # selector: kind | content type << 2 | 0x10 subject tail in the input | 0x20 twice
    TICK, CANDLE, BULK, EVENT = range(4)
    docs = [(TICK, "tick-example", example("market.tick.EURUSD.payload.json")),
            (CANDLE, "candle-example", example("market.candle.EURUSD.1h.payload.json")),
            (BULK, "candles-example", example("market.candles.EURUSD.1h.payload.json")),
            (EVENT, "event-example", example("market.event.US.payload.json"))]
    docs += [(TICK, "tick-m1-derived-%d" % i, t) for i, t in enumerate(TICKS[:3])]
    docs += [(CANDLE, "candle-h1-%d" % i, k) for i, k in enumerate(H1[3:6])]
    docs += [(BULK, "candles-h1-12", {"candles": H1[:12]})]
    docs += [(EVENT, "event-calendar-%d" % i, e) for i, e in enumerate(EVENTS[:4])]
    # Real rows corrupted on purpose: swapped high/low, a misaligned time, a bulk with both.
    bad = dict(H1[7], high=H1[7]["low"], low=H1[7]["high"])
    docs += [(CANDLE, "candle-h1-high-below-low", bad),
             (CANDLE, "candle-h1-misaligned", dict(H1[8], timestamp=H1[8]["timestamp"] + 60000)),
             (BULK, "candles-h1-two-bad", {"candles": H1[9:12] + [bad, dict(H1[12], source="")]}),
             (TICK, "tick-ask-below-bid", dict(TICKS[3], ask=TICKS[3]["bid"] - 0.0001))]
    for kind, name, doc in docs:
        write("ingest", name + ".json", bytes([kind | 1 << 2]) + js(doc))
        write("ingest", name + ".msgpack", bytes([kind | 2 << 2]) + mp(doc))
    # Other subjects: one-minute candles, and a subject naming another symbol.
    for i, k in enumerate(M1[:3]):
        write("ingest", "candle-m1-%d.json" % i, bytes([CANDLE | 0x10]) + b"EURUSD.1m\n" + js(k))
    write("ingest", "candles-m1-bulk.msgpack",
          bytes([BULK | 0x10 | 0x20]) + b"EURUSD.1m\n" + mp({"candles": M1[:10]}))
    write("ingest", "tick-other-symbol.json", bytes([TICK | 0x10]) + b"GBPUSD\n" + js(TICKS[4]))
    write("ingest", "event-eu-twice.json", bytes([EVENT | 0x10 | 0x20]) + b"EU\n" + js(EVENTS[4]))


def strategy():
    with open(os.path.join(ROOT, "strategy", "strategy.json"), "rb") as f:
        raw = f.read()
    doc = json.loads(raw)
    write("strategy", "strategy.json", raw)
    write("strategy", "strategy-compact.json", js(doc))
    for section in doc:
        write("strategy", "without-%s.json" % section,
              js({k: v for k, v in doc.items() if k != section}))
        if isinstance(doc[section], dict):
            write("strategy", "only-%s.json" % section, js({"version": 1, section: doc[section]}))
    changed = [("routing", "get_candles", ["timescale"]),
               ("routing", "get_historical", ["clickhouse", "timescale", "clickhouse"]),
               ("cache", "l1_max_entries", 0),
               ("cache", "candle_cache_depth", 10001),
               ("connection_pools", "timescale", {"min_size": 30, "max_size": 20}),
               ("performance", "retry_backoff_multiplier", 1.5),
               ("performance", "batch_size", 1e300),
               ("optimization", "enable_query_cache", False),
               ("optimization", "enable_query_cache", "yes")]
    for i, (section, key, value) in enumerate(changed):
        d = json.loads(raw)
        d[section][key] = value
        write("strategy", "changed-%d-%s-%s.json" % (i, section, key), js(d))
    write("strategy", "version-string.json", js(dict(doc, version="2026-04-rollout")))


def b64(s):
    return base64.urlsafe_b64encode(s.encode()).rstrip(b"=").decode()


def serve():
    # selector: subject index | content type << 3
    subjects = ["dm.v1.tick.latest", "dm.v1.candles.latest", "dm.v1.candles.history",
                "dm.v1.events", "dm.v1.aggregates", "dm.v1.health", "dm.v1.metrics",
                "dm.v1.patterns.find"]
    reqs = [(i, s, example(s + ".request.json")) for i, s in enumerate(subjects)]
    history = example("dm.v1.candles.history.request.json")
    events = example("dm.v1.events.request.json")
    reqs += [
        (0, "tick-gbpusd", {"symbol": "GBPUSD"}),
        (1, "candles-latest-8", {"symbol": "EURUSD", "timeframe": "1h", "limit": 8}),
        (1, "candles-latest-m1", {"symbol": "EUR/USD", "timeframe": "1m"}),
        (2, "history-cursor", dict(history, cursor=b64("c1|EUR/USD|1h|%d" % H1[2]["timestamp"]))),
        (2, "history-iso", dict(history, start_date="2020-01-09T00:00:00.000Z",
                                end_date="2020-01-09T12:00:00+02:00", page_size=10000)),
        (2, "history-ms", dict(history, start_date=H1[0]["timestamp"],
                               end_date=H1[-1]["timestamp"])),
        (3, "events-cursor", dict(events, cursor=b64("e1|%d|%s" % (EVENTS[1]["timestamp"],
                                                                   EVENTS[1]["event_id"])))),
        (3, "events-currency", {"start_date": "2026-04-01", "end_date": "2026-05-02",
                                "currency": "EUR", "impact": "HIGH"}),
        (4, "aggregates-all-time", {"symbol": "EUR/USD", "timeframe": "1h", "period": "1mo"}),
        (4, "aggregates-day", {"symbol": "EUR/USD", "timeframe": "1m", "period": "1d",
                               "start_date": "2020-01-09", "end_date": "2020-01-10"}),
    ]
    for idx, name, req in reqs:
        name = name.replace("dm.v1.", "")
        write("serve", name + ".json", bytes([idx | 1 << 3]) + js(req))
        write("serve", name + ".msgpack", bytes([idx | 2 << 3]) + mp(req))
    write("serve", "tick-empty-body", bytes([0]))


def coherence():
    # What dm_coherence_encode publishes after a commit: the newest rows per key.
    # Each row with the stream sequence of its message and the backend that committed it.
    def update(backend, key, rows, first_seq=100):
        return mp({"backend": backend, key: rows, "seqs": list(range(first_seq, first_seq + len(rows)))})
    write("coherence", "ticks.msgpack", update("timescale", "ticks", TICKS[:2]))
    write("coherence", "candles-h1-replace.msgpack", update("dragonfly", "candles", H1[2:4]))
    write("coherence", "candles-h1-extend.msgpack", update("timescale", "candles", H1[4:8]))
    write("coherence", "candles-h1-gap.msgpack", update("clickhouse", "candles", [H1[15]]))
    write("coherence", "candles-m1.msgpack", update("dragonfly", "candles", M1[:8]))
    write("coherence", "candles-older-seq.msgpack", update("dragonfly", "candles", H1[2:4], 1))
    write("coherence", "seqs-short.msgpack", mp({"backend": "timescale", "ticks": TICKS[:2], "seqs": [1]}))
    write("coherence", "no-backend.msgpack", mp({"ticks": TICKS[:2], "seqs": [1, 2]}))
    write("coherence", "neither.msgpack", mp({"backend": "timescale", "events": EVENTS[:1], "seqs": [1]}))


def proto_schema():
    """{message: {field: (number, type, repeated)}} from schemas/market_data.proto."""
    import re
    schema, current = {}, None
    with open(os.path.join(ROOT, "schemas", "market_data.proto")) as f:
        for line in f:
            m = re.match(r"message (\w+)", line)
            if m:
                current = schema.setdefault(m.group(1), {})
            m = re.match(r"\s+(optional|repeated) (\w+) (\w+) = (\d+)", line)
            if m:
                current[m.group(3)] = (int(m.group(4)), m.group(2), m.group(1) == "repeated")
    return schema


def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return out


def pb(schema, message, doc):
    """A document as protobuf bytes of message (proto2: packed only where declared, and
    the declared ones are the double vectors)."""
    out = b""
    for name, value in doc.items():
        if value is None:
            continue
        number, kind, repeated = schema[message][name]
        values = value if repeated else [value]
        if repeated and kind == "double":
            run = b"".join(struct.pack("<d", v) for v in values)
            out += varint(number << 3 | 2) + varint(len(run)) + run
            continue
        for v in values:
            if kind == "double":
                out += varint(number << 3 | 1) + struct.pack("<d", v)
            elif kind in ("int64", "bool"):
                out += varint(number << 3) + varint(int(v))
            elif kind == "string":
                out += varint(number << 3 | 2) + varint(len(v.encode())) + v.encode()
            else:
                inner = pb(schema, kind, {"symbols": v} if kind == "Cluster" else v)
                out += varint(number << 3 | 2) + varint(len(inner)) + inner
    return out


def protobuf():
    # selector: message index (fuzz/fuzz_protobuf.c's TYPES order) | 0x80 strict
    schema = proto_schema()
    payloads = [("Tick", "market.tick.EURUSD.payload.json", TICKS[:3]),
                ("Candle", "market.candle.EURUSD.1h.payload.json", H1[3:6]),
                ("CandleBatch", "market.candles.EURUSD.1h.payload.json", [{"candles": H1[:12]}]),
                ("EconomicEvent", "market.event.US.payload.json", EVENTS[:3])]
    for i, (msg, name, more) in enumerate(payloads):
        for k, doc in enumerate([example(name)] + more):
            write("protobuf", "%s-%d.pb" % (msg, k), bytes([i]) + pb(schema, msg, doc))
    subjects = [("tick.latest", "TickLatestRequest", "TickReply"),
                ("candles.latest", "CandlesLatestRequest", "CandlesReply"),
                ("candles.history", "CandlesHistoryRequest", "CandlesReply"),
                ("events", "EventsRequest", "EventsReply"),
                ("aggregates", "AggregatesRequest", "AggregatesReply"),
                ("patterns.find", "PatternsFindRequest", "PatternsReply"),
                ("patterns.similar", "PatternsSimilarRequest", "PatternsReply"),
                ("correlations", "CorrelationsRequest", "CorrelationsReply"),
                ("graph", "GraphRequest", "GraphReply")]
    for i, (subject, request, reply) in enumerate(subjects):
        req = example("dm.v1.%s.request.json" % subject)
        for k in ("start_date", "end_date"):  # protobuf dates are Unix ms
            if isinstance(req.get(k), str):
                req[k] = utc_ms(req[k], "%Y-%m-%d")
        write("protobuf", "%s.pb" % request, bytes([4 + 2 * i | 0x80]) + pb(schema, request, req))
        rep = example("dm.v1.%s.reply.json" % subject)
        if len(pb(schema, reply, rep)) < 4000:
            write("protobuf", "%s-%s.pb" % (reply, subject), bytes([5 + 2 * i]) + pb(schema, reply, rep))
    error = {"code": "invalid_field", "message": "limit 1001 is out of range [1, 1000]", "field": "limit"}
    write("protobuf", "ErrorReply.pb", bytes([22]) + pb(schema, "ErrorReply", error))
    write("protobuf", "unknown-field-15.pb", bytes([4 | 0x80]) + pb(schema, "TickLatestRequest",
                                                                    {"symbol": "EUR/USD"}) + b"\x78\x01")


def regressions():
    """Inputs that once broke a target (see tests/unit/test_regressions.c), replayed first
    on every run: under clang's UBSan they catch what the gcc unit build cannot."""
    huge = b"\xdd\xff\xff\xff\xff"  # an array announcing 2^32 values
    write("ingest", "regression-count-beyond-payload.msgpack", bytes([2 | 2 << 2]) +
          b"\x81\xa7candles" + huge)
    write("coherence", "regression-count-beyond-payload.msgpack", b"\x81\xa5ticks" + huge)
    write("serve", "regression-empty-key.msgpack", bytes([0 | 2 << 3]) + b"\x81\xa0\xa0")
    history = example("dm.v1.candles.history.request.json")
    write("serve", "regression-cursor-at-int64-max.json", bytes([2 | 1 << 3]) +
          js(dict(history, cursor=b64("c1|EUR/USD|1h|9223372036854775807"))))


if __name__ == "__main__":
    for target in ("ingest", "strategy", "serve", "coherence", "protobuf"):
        shutil.rmtree(os.path.join(OUT, target), ignore_errors=True)
        os.makedirs(os.path.join(OUT, target))
    ingest()
    strategy()
    serve()
    coherence()
    protobuf()
    regressions()
