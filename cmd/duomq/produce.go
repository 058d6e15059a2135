package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/client"
)

type produceFlags struct {
	topic    string
	key      string
	tag      string
	count    int
	size     int
	delay    time.Duration
	maxBytes int
}

// ackLine is what produce prints for every stored message.
type ackLine struct {
	ID             string `json:"id"`
	Topic          string `json:"topic"`
	Key            string `json:"key"`
	Queue          uint32 `json:"queue"`
	Offset         int64  `json:"offset"`
	DC             string `json:"dc"`
	Fallback       bool   `json:"fallback,omitempty"`
	FallbackReason string `json:"fallback_reason,omitempty"`
}

func newProduceCommand(g *globalFlags) *cobra.Command {
	var pf proxyFlags
	var f produceFlags
	cmd := &cobra.Command{
		Use:   "produce (--proxy ADDR | --cluster FILE --dc DC) --topic T [--key K] [--tag TAG] [--count N --size B] [--delay D]",
		Short: "Send stdin's lines (or --count generated bodies) through a proxy; print one JSON line per stored message",
		Long: `Send each line of stdin as one message (or --count bodies of --size bytes),
one after the other, so that messages with the same --key keep their order on
an ordered topic. Every stored message prints a JSON line
{"id","topic","key","queue","offset","dc"} ("fallback" when another DC took
it). The first refused send stops the command with a non-zero exit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.count > 0 && f.size <= 0 {
				return fmt.Errorf("--count needs --size BYTES")
			}
			site, err := pf.one(g)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c, err := pf.connect(ctx, g, site, func(cfg *client.Config) { cfg.MaxMessageBytes = f.maxBytes })
			if err != nil {
				return err
			}
			defer c.Close()
			p := c.NewProducer()
			defer p.Close()
			next := f.bodies(cmd.InOrStdin())
			enc := json.NewEncoder(cmd.OutOrStdout())
			for {
				body, err := next()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("read stdin: %w", err)
				}
				r, err := p.Send(ctx, f.message(body))
				if err != nil {
					return err
				}
				if err := enc.Encode(ackLine{ID: r.ID, Topic: r.Topic, Key: f.key, Queue: r.Queue, Offset: r.Offset, DC: r.DC,
					Fallback: r.Fallback, FallbackReason: r.FallbackReason}); err != nil {
					return err
				}
			}
		},
	}
	pf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.topic, "topic", "", "topic to send to")
	fl.StringVar(&f.key, "key", "", "message key, and sharding key of an ordered topic (same key: same queue, kept in order)")
	fl.StringVar(&f.tag, "tag", "", "message tag (consumers filter on it)")
	fl.IntVar(&f.count, "count", 0, "send this many generated bodies instead of stdin's lines")
	fl.IntVar(&f.size, "size", 0, "bytes of each generated body (with --count)")
	fl.DurationVar(&f.delay, "delay", 0, "deliver the messages this long after sending")
	fl.IntVar(&f.maxBytes, "max-message-bytes", client.DefaultConfig().MaxMessageBytes, "refuse bodies larger than this before sending (0: leave it to the server)")
	cmd.MarkFlagRequired("topic")
	return cmd
}

func (f *produceFlags) message(body []byte) *client.Message {
	m := &client.Message{Topic: f.topic, Body: body, Tag: f.tag}
	if f.key != "" {
		m.Keys = []string{f.key}
		m.ShardingKey = f.key
	}
	if f.delay > 0 {
		m.DeliverAt = time.Now().Add(f.delay)
	}
	return m
}

// bodies returns an iterator over the bodies to send: --count generated
// ones, or stdin's non-empty lines (of any length), then io.EOF.
func (f *produceFlags) bodies(in io.Reader) func() ([]byte, error) {
	if f.count > 0 {
		i := 0
		return func() ([]byte, error) {
			if i == f.count {
				return nil, io.EOF
			}
			i++
			return generatedBody(i, f.size), nil
		}
	}
	r := bufio.NewReaderSize(in, 64<<10)
	return func() ([]byte, error) {
		for {
			line, err := r.ReadBytes('\n')
			line = bytes.TrimRight(line, "\r\n")
			if len(line) > 0 {
				return line, nil
			}
			if err != nil {
				return nil, err
			}
		}
	}
}

// generatedBody is "msg-<i> " padded with dots to size bytes.
func generatedBody(i, size int) []byte {
	b := bytes.Repeat([]byte("."), size)
	copy(b, fmt.Sprintf("msg-%d ", i))
	return b
}
