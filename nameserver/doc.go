// Package nameserver is a data center's discovery service, and the client
// side of it: brokers announce themselves with a Registrar; proxies and
// tools find routes with a RouteClient.
//
// A Server is stateless apart from a table of leases: every broker
// registers every few seconds (name, address, DC, permission, topics with
// queue counts and permissions), and a registration that is not renewed
// within the lease drops out of every route. Several nameservers per DC run
// independently; a broker registers with each of them, so losing one loses
// nothing.
//
// Invariants:
//   - A route never names a broker whose lease has expired (expiry is
//     checked on every read, not only by the sweeper).
//   - A RouteClient keeps serving the last route it saw while every
//     nameserver is unreachable, so sending and receiving go on; it reports
//     the route's age so callers can tell.
//
// Use:
//
//	srv := nameserver.New(nameserver.DefaultConfig(), logger, registry)
//	nameserverpb.RegisterNameserverServer(grpcServer, srv)
//	go srv.Run(ctx) // sweeps expired leases
package nameserver
