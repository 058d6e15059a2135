package meta

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Re-list back-off after a broken watch.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// run watches from rev+1 and, whenever the watches break, re-lists and
// watches again, until Close.
func (c *Cache) run(rev int64) {
	defer close(c.done)
	backoff := minBackoff
	for {
		started := time.Now()
		err := c.watch(rev)
		if c.ctx.Err() != nil {
			return
		}
		if time.Since(started) > 5*maxBackoff {
			backoff = minBackoff
		}
		c.log.Warn("metadata watch broken, reloading", "revision", rev, "err", err)
		for {
			if !c.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			if rev, err = c.load(c.ctx); err == nil {
				break
			}
			if c.ctx.Err() != nil {
				return
			}
			c.log.Debug("metadata reload failed", "err", err)
		}
	}
}

func (c *Cache) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

var errWatchClosed = errors.New("watch channel closed")

// watch applies the events of the six watched ranges from rev+1 until one
// of the watches fails or the cache closes.
func (c *Cache) watch(rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(c.ctx))
	defer cancel()
	c.wmu.Lock()
	c.wctx = wctx
	c.wmu.Unlock()

	var chans [6]clientv3.WatchChan
	for i, r := range c.ranges {
		chans[i] = c.s.cli.Watch(wctx, r.start, clientv3.WithRange(r.end), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	}
	for {
		var (
			resp clientv3.WatchResponse
			ok   bool
			i    int
		)
		select {
		case resp, ok = <-chans[0]:
		case resp, ok = <-chans[1]:
			i = 1
		case resp, ok = <-chans[2]:
			i = 2
		case resp, ok = <-chans[3]:
			i = 3
		case resp, ok = <-chans[4]:
			i = 4
		case resp, ok = <-chans[5]:
			i = 5
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
		if !ok {
			return errWatchClosed
		}
		if err := resp.Err(); err != nil {
			return err
		}
		c.apply(i, resp)
	}
}

// apply applies one watch response of watch i.
func (c *Cache) apply(i int, resp clientv3.WatchResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range resp.Events {
		c.applyLocked(ev.Kv, ev.Type == clientv3.EventTypeDelete)
	}
	if r := resp.Header.Revision; r > c.watchRev[i] {
		c.watchRev[i] = r
	}
	c.advanceLocked()
	if len(resp.Events) > 0 {
		c.notifyLocked()
	}
}
