package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// AnyRevision as the expected revision of PutJSON and DeleteJSON skips the
// revision compare.
const AnyRevision int64 = -1

// Options configure a Store.
type Options struct {
	// Prefix is the root of every key (default DefaultPrefix). Tests give
	// each store its own prefix to share one cluster.
	Prefix string
	// Timeout bounds each call whose context has no deadline (default 5s),
	// so a lost quorum surfaces as ErrUnavailable instead of a hang.
	Timeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now stamps UpdatedAt fields (default time.Now).
	Now func() time.Time
}

// Store reads and writes duomq's metadata schema in etcd. It is safe for
// concurrent use; it holds no state besides the client.
type Store struct {
	cli     *clientv3.Client
	k       keys
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time
}

// New returns a Store over cli. The caller owns cli and closes it after the
// Store (and its Caches) are no longer used.
func New(cli *clientv3.Client, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{cli: cli, k: keys{opts.Prefix}, timeout: opts.Timeout, log: opts.Logger, now: opts.Now}
}

// Client is the etcd client the Store uses, for the controller's election.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix is the root of the Store's keys.
func (s *Store) Prefix() string { return s.k.prefix }

// Key is the absolute etcd key of a key relative to the prefix, such as
// KeyControllerLeader.
func (s *Store) Key(rel string) string { return s.k.abs(rel) }

// reqCtx requires an etcd leader for the request (so a member cut off from
// the quorum answers at once instead of serving stale data or queueing a
// proposal) and applies the default timeout.
func (s *Store) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx = clientv3.WithRequireLeader(ctx)
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.timeout)
}

// get reads one key: nil when absent, with the header revision.
func (s *Store) get(ctx context.Context, op, key string) (*mvccpb.KeyValue, int64, error) {
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, 0, s.fail(op, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, resp.Header.Revision, nil
	}
	return resp.Kvs[0], resp.Header.Revision, nil
}

// list reads every key under a prefix.
func (s *Store) list(ctx context.Context, op, prefix string) ([]*mvccpb.KeyValue, int64, error) {
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, s.fail(op, err)
	}
	return resp.Kvs, resp.Header.Revision, nil
}

// txn runs If(cmps).Then(ops).Else(els).
func (s *Store) txn(ctx context.Context, op string, cmps []clientv3.Cmp, ops, els []clientv3.Op) (*clientv3.TxnResponse, error) {
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(els...).Commit()
	if err != nil {
		return nil, s.fail(op, err)
	}
	return resp, nil
}

// fail maps an etcd error to the package's errors.
func (s *Store) fail(op string, err error) error {
	switch {
	case isUnavailable(err):
		return errorf(ErrUnavailable, "%s: metadata store unavailable: no etcd leader or quorum reachable in time (%w); if this was a write, it may or may not have been applied", op, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("meta: %s: %w", op, err)
}

// isUnavailable reports errors that mean no quorum answered: deadlines,
// no leader, lost connections, request timeouts inside etcd, and a
// proposal raft dropped (while the leadership is being transferred, as
// the controllers do to keep it on the witness), which was not applied.
func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if st, ok := status.FromError(err); ok && st.Code() == codes.Unknown && strings.Contains(st.Message(), proposalDropped) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded
	}
	if st, ok := status.FromError(err); ok {
		return st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded
	}
	return false
}

// proposalDropped is raft's ErrProposalDropped, which etcd passes to
// clients as an Unknown status with this text.
const proposalDropped = "raft proposal dropped"

// Compare helpers.

func exists(key string) clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(key), ">", 0)
}

func absent(key string) clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
}

func atRevision(key string, rev int64) clientv3.Cmp {
	return clientv3.Compare(clientv3.ModRevision(key), "=", rev)
}

// revisionCmp compares a key against an expected revision: 0 means absent.
func revisionCmp(key string, rev int64) clientv3.Cmp {
	if rev == 0 {
		return absent(key)
	}
	return atRevision(key, rev)
}

// found reports whether the i-th Else response of a failed txn (a Get)
// found its key, and returns it.
func found(resp *clientv3.TxnResponse, i int) (*mvccpb.KeyValue, bool) {
	r := resp.Responses[i].GetResponseRange()
	if r == nil || len(r.Kvs) == 0 {
		return nil, false
	}
	return r.Kvs[0], true
}

func conflict(what string, have, want int64) error {
	return errorf(ErrConflict, "%s changed: it is at revision %d, the write expected %d: re-read and retry", what, have, want)
}

// casRetry runs attempt until it stops reporting a lost race, for writes
// whose intent stays valid when re-applied to a newer value.
func casRetry(ctx context.Context, attempt func() (int64, error)) (int64, error) {
	var err error
	for range defaultCASRetries {
		var rev int64
		rev, err = attempt()
		if !errors.Is(err, ErrConflict) {
			return rev, err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return 0, err
}
