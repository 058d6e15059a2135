// Package controller is duomq's DR controller: it decides which DC leads
// each ordered topic and where unordered writes go, and moves them when a
// DC is lost, drained or returns. Candidates run in every site; one,
// elected through etcd (concurrency.Election on controller/leader, value
// {id, api_url}), leads.
//
// # What it owns
//
//   - The fencing records ordered/<topic> {primary, epoch, blocked} after
//     their creation, and the traffic policy (weights, blocked DCs) when
//     an operator changes it through the API.
//   - DC states down (failover) and active (failback).
//   - controller/state: the transitions in progress, and the audit log
//     audit/<%020d unix nanos>.
//
// # Invariants
//
//   - Every routing write is a compare-revision transaction (CASOrdered,
//     CASTraffic): of two controllers that read the same record, exactly
//     one wins; the loser re-reads and finds the record done or changed
//     (ErrConflict, HTTP 409). Only the leader writes controller/state: the
//     write compares this candidate's election key.
//   - A topic's epoch only grows, and in one epoch at most one DC accepts
//     its writes. A planned move blocks the source (epoch e+1, blocked),
//     fences its brokers at e+1, waits until the target's followers hold
//     every fenced offset, then promotes the target (e+2): zero loss, zero
//     reorder. A failed fence or catch-up rolls back (source, e+2).
//   - A failover promotes the target only when no broker of the source can
//     accept a write: its liveness records are all gone (each broker
//     accepts ordered writes only while its etcd lease is renewed), or,
//     when forced while some are alive, after the blocked write once each
//     alive broker was fenced or the lease TTL has passed.
//   - controller/state is written before every step, and each step is
//     idempotent: it re-reads the topic's record and does only what is
//     missing. A new leader resumes every transition from its stored phase.
//   - One transition per topic at a time; a request racing one is refused
//     (ErrBusy). Every refused request changes nothing.
//   - Every finished transition and traffic change is appended to the
//     audit log, with its write pause and duration.
//
// # Use
//
//	c, err := controller.New(cfg, controller.Deps{Store: store, Brokers: controller.NewGRPCBrokers(), Logger: log, Registerer: reg})
//	api, err := controller.NewAPI(c, token) // an http.Handler
//	go c.Run(ctx)
//	<-c.Ready()
//	defer c.Close()
//
// internal/daemon.RunController serves it as `duomq controller`; the
// operator commands are `duomq traffic|switchover|failover|failback|status`
// (docs/controller.md, docs/controller-api.yaml).
package controller
