package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/client"
)

type consumeFlags struct {
	group     string
	topic     string
	from      string
	tag       string
	max       int
	idle      time.Duration
	invisible time.Duration
}

// messageLine is what consume prints for every message.
type messageLine struct {
	ID        string `json:"id"`
	Topic     string `json:"topic"`
	Key       string `json:"key"`
	Tag       string `json:"tag,omitempty"`
	Body      string `json:"body"`
	Queue     uint32 `json:"queue"`
	Offset    int64  `json:"offset"`
	DC        string `json:"dc"`
	Reconsume int32  `json:"reconsume"`
}

func newConsumeCommand(g *globalFlags) *cobra.Command {
	var pf proxyFlags
	var f consumeFlags
	cmd := &cobra.Command{
		Use:   "consume (--proxy ADDR | --cluster FILE --dc DC) --group G --topic T [--from earliest|latest|TIME] [--max N] [--idle-timeout D] [--tag EXPR]",
		Short: "Receive a group's messages through a proxy, print one JSON line each and ack it",
		Long: `Receive messages of a consumer group's subscription, print each as a JSON
line {"id","topic","key","body","queue","offset","dc","reconsume"} and then ack
it, in the order received (queue order for an ordered topic). Stops after --max
messages, after --idle-timeout without one, or on Ctrl-C. --from says where a
group with no committed offset starts: latest (default), earliest or an
RFC 3339 time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			from, err := client.ParseConsumeFrom(f.from)
			if err != nil {
				return err
			}
			site, err := pf.one(g)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c, err := pf.connect(ctx, g, site)
			if err != nil {
				return err
			}
			defer c.Close()
			wait := 5 * time.Second
			if f.idle > 0 {
				wait = min(wait, f.idle)
			}
			sc, err := c.NewSimpleConsumer(f.group, f.topic, f.tag, client.WithConsumeFrom(from), client.WithReceiveWait(wait))
			if err != nil {
				return err
			}
			defer sc.Close()
			err = f.run(ctx, cmd, sc)
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil // interrupted: what was printed was acked
			}
			return err
		},
	}
	pf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.group, "group", "", "consumer group")
	fl.StringVar(&f.topic, "topic", "", "topic")
	fl.StringVar(&f.from, "from", "latest", "where a group with no committed offset starts: latest, earliest or an RFC 3339 time")
	fl.StringVar(&f.tag, "tag", "", `tag expression: "*" or "a || b" (default: the group's subscription)`)
	fl.IntVar(&f.max, "max", 0, "stop after this many messages (0: no limit)")
	fl.DurationVar(&f.idle, "idle-timeout", 0, "stop after this long without a message (0: never)")
	fl.DurationVar(&f.invisible, "invisible", 30*time.Second, "how long a received message stays hidden from other consumers before it is acked")
	cmd.MarkFlagRequired("group")
	cmd.MarkFlagRequired("topic")
	return cmd
}

// run receives, prints and acks until --max messages or --idle-timeout.
func (f *consumeFlags) run(ctx context.Context, cmd *cobra.Command, sc *client.SimpleConsumer) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	n := 0
	lastMsg := time.Now()
	for f.max == 0 || n < f.max {
		if f.idle > 0 && time.Since(lastMsg) >= f.idle {
			return nil
		}
		want := 32
		if f.max > 0 {
			want = min(want, f.max-n)
		}
		rctx, cancel := f.receiveContext(ctx, lastMsg)
		ms, err := sc.Receive(rctx, want, f.invisible)
		cancel()
		if err != nil && !(errors.Is(err, client.ErrTimeout) && ctx.Err() == nil) {
			return err
		}
		for _, m := range ms {
			if err := enc.Encode(lineOf(m)); err != nil {
				return err
			}
			if err := sc.Ack(ctx, m); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "duomq: ack %s: %v (it will be delivered again)\n", m.ID, err)
			}
			n++
		}
		if len(ms) > 0 {
			lastMsg = time.Now()
		}
	}
	return nil
}

// receiveContext ends a receive when the idle timeout would pass.
func (f *consumeFlags) receiveContext(ctx context.Context, lastMsg time.Time) (context.Context, context.CancelFunc) {
	if f.idle <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, lastMsg.Add(f.idle).Add(time.Second))
}

func lineOf(m *client.MessageView) messageLine {
	key := m.ShardingKey
	if len(m.Keys) > 0 {
		key = m.Keys[0]
	}
	return messageLine{ID: m.ID, Topic: m.Topic, Key: key, Tag: m.Tag, Body: string(m.Body), Queue: m.Queue,
		Offset: m.Offset, DC: m.DC, Reconsume: m.ReconsumeTimes}
}
