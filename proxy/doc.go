// Package proxy is the stateless gRPC front door of a data center: it
// writes unordered traffic to its own DC's brokers, forwards ordered
// traffic to the topic's primary DC stamped with the topic's epoch, and
// serves message-level consumption (receive, ack, invisibility, retry and
// dead letters).
//
// Status: planned; this package holds no code yet.
package proxy
