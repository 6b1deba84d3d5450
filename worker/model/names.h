/* Names of contract v1 shared by every program of the project (dm-worker, dmctl, the
 * benchmarks and tests): streams, subject formats and headers. Written once here, so a
 * client cannot drift from the worker. */
#ifndef DM_NAMES_H
#define DM_NAMES_H

#define DM_STREAM_MARKET "MARKET" /* the write-ahead log of market data */
#define DM_STREAM_DLQ "DLQ"       /* dead letters */

/* Publish subjects: the symbol token (EURUSD), the timeframe, the country. */
#define DM_SUBJ_TICK_FMT "market.tick.%s"
#define DM_SUBJ_CANDLE_FMT "market.candle.%s.%s"
#define DM_SUBJ_CANDLES_FMT "market.candles.%s.%s"
#define DM_SUBJ_EVENT_FMT "market.event.%s"
#define DM_SUBJ_MARKET_PREFIX "market."
#define DM_SUBJ_DLQ_FMT "dm.dlq.%s" /* the kind: tick candle candles event */
#define DM_SUBJ_DLQ_ALL "dm.dlq.>"

/* Request subjects: every subject a worker answers (queue group "dm"). */
#define DM_SUBJ_PREFIX "dm.v1."
#define DM_SUBJ_TICK_LATEST "dm.v1.tick.latest"
#define DM_SUBJ_CANDLES_LATEST "dm.v1.candles.latest"
#define DM_SUBJ_CANDLES_HISTORY "dm.v1.candles.history"
#define DM_SUBJ_EVENTS "dm.v1.events"
#define DM_SUBJ_AGGREGATES "dm.v1.aggregates"
#define DM_SUBJ_PATTERNS_FIND "dm.v1.patterns.find"
#define DM_SUBJ_PATTERNS_SIMILAR "dm.v1.patterns.similar"
#define DM_SUBJ_CORRELATIONS "dm.v1.correlations"
#define DM_SUBJ_GRAPH "dm.v1.graph"
#define DM_SUBJ_HEALTH "dm.v1.health"
#define DM_SUBJ_METRICS "dm.v1.metrics"

/* Headers. Nats-Msg-Id is JetStream's (deduplication); Dm-* say why a message was
 * dead-lettered. */
#define DM_HDR_MSG_ID "Nats-Msg-Id"
#define DM_HDR_CONTENT_TYPE "Content-Type"
#define DM_HDR_ACCEPT "Accept" /* a request's: the reply encoding it wants */
#define DM_HDR_REASON "Dm-Reason"
#define DM_HDR_CODE "Dm-Code"
#define DM_HDR_FIELD "Dm-Field"
#define DM_HDR_ORIGINAL_SUBJECT "Dm-Original-Subject"
#define DM_HDR_STREAM_SEQ "Dm-Stream-Seq"
#define DM_HDR_CONSUMER "Dm-Consumer"
#define DM_HDR_BACKEND "Dm-Backend"
#define DM_HDR_DELIVERED "Dm-Delivered"
#define DM_HDR_INDEX "Dm-Index"

#endif
