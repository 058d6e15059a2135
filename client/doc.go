// Package client is the Go SDK of duomq for application teams: producers and
// consumers that talk to the proxy of their own data center (api/proxypb);
// they never see brokers, nameservers or the metadata service.
//
// # Connecting
//
// New takes a Config: one proxy address (Config.Proxy) or one per IDC
// (Config.Proxies). With several, the client connects to the proxy of its
// own IDC, found from the sources of Config.IDC.Sources, in order:
//
//   - env: the DUOMQ_IDC environment variable;
//   - file: the logicIdc file (default /etc/logicIdc), its trimmed content;
//   - ip: the proxy's ResolveIDC matches the host's non-loopback addresses
//     (and IDC.ExtraAddresses) against the DCs' CIDRs in the metadata;
//   - default: IDC.Default.
//
// Client.IDC and Client.IDCSource say what was found. A client with a
// single proxy that found nothing takes that proxy's DC (source "proxy").
// A client heartbeats its proxy every few seconds once it has a producer or
// a consumer (id, app, IDC and its source, Version, topics, groups, host):
// `duomq clients` lists them.
//
// # Sending
//
// Producer.Send, SendAsync and SendBatch store messages. Every message gets
// an id before its first attempt and is sent as idempotent, so a send
// retried after a lost reply is stored once. Calls that fail with
// UNAVAILABLE, RESOURCE_EXHAUSTED (after the server's RetryInfo delay) or
// the attempt's own timeout are retried with exponential backoff
// (Config.Retry); refusals (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED,
// FAILED_PRECONDITION, ...) are returned at once. Bodies larger than
// Config.CompressThreshold (4 KiB) travel compressed with zstd and reach
// consumers as sent. A body larger than Config.MaxMessageBytes (4 MiB, the
// default topic limit) is refused before sending, measured uncompressed.
//
// Ordered sends are messages with a ShardingKey on an ordered topic: the
// key picks the queue, and messages of one key sent one after the other
// are delivered in that order. Message.DeliverAt delays delivery.
//
// # Consuming
//
// Consumption is message-level: a received message stays invisible to the
// group's other consumers until it is acked or its invisible duration
// ends, then it is delivered again with ReconsumeTimes raised; after the
// group's retries it goes to the group's dead letters (`duomq dlq`).
//
//   - SimpleConsumer: Receive, Ack, ChangeInvisibleDuration (0 hands a
//     message back for redelivery with backoff).
//   - PushConsumer: runs a Handler on each message with bounded
//     concurrency; nil acks, an error hands the message back. Its
//     invisibility is extended while the handler runs. Close stops
//     receiving and drains running handlers.
//
// WithConsumeFrom says where a group with no committed offset starts
// (latest by default, earliest, or a time).
//
// TraceMessage (`duomq trace`) shows where a message went in both DCs:
// stored, replicated, delivered to each group, retried, dead-lettered;
// MessageTrace.Timeline tells it in order.
//
// # Errors
//
// Every failed call returns an *Error wrapping one of the sentinels of
// errors.go (ErrTopicNotFound, ErrMessageTooLarge, ErrThrottled, ...),
// chosen from the status's ErrorInfo reason, so callers branch with
// errors.Is; the server's message, code and reason are kept.
//
// Authentication: with Config.AccessKey and SecretKey every call is signed
// (package proxy/auth).
package client
