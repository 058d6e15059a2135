package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/duomq/duomq/client"
)

// A producer and a consumer of an ordered topic through the proxy of the
// client's IDC.
func Example() {
	proxy, stop := startExampleTopology() // in production: your DC's proxy address
	defer stop()

	ctx := context.Background()
	cfg := client.DefaultConfig()
	cfg.Proxy = proxy
	cfg.App = "orders-service"
	c, err := client.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	p := c.NewProducer()
	defer p.Close()
	for _, event := range []string{"created", "paid", "shipped"} {
		// Messages with one sharding key are delivered in the order sent.
		_, err := p.Send(ctx, &client.Message{Topic: "orders", ShardingKey: "order-1001", Tag: event, Body: []byte("order 1001 " + event)})
		if err != nil {
			log.Fatal(err)
		}
	}
	_, err = p.Send(ctx, &client.Message{Topic: "no-such-topic", Body: []byte("x")})
	fmt.Println("unknown topic refused:", errors.Is(err, client.ErrTopicNotFound))

	consumer, err := c.NewSimpleConsumer("billing", "orders", "*", client.WithConsumeFrom(client.ConsumeFromEarliest))
	if err != nil {
		log.Fatal(err)
	}
	for received := 0; received < 3; {
		msgs, err := consumer.Receive(ctx, 16, 30*time.Second)
		if err != nil {
			log.Fatal(err)
		}
		for _, m := range msgs {
			fmt.Printf("%s (tag %s)\n", m.Body, m.Tag)
			if err := consumer.Ack(ctx, m); err != nil {
				log.Fatal(err)
			}
			received++
		}
	}
	// Output:
	// unknown topic refused: true
	// order 1001 created (tag created)
	// order 1001 paid (tag paid)
	// order 1001 shipped (tag shipped)
}

// A push consumer runs a handler on each message; a handler error hands the
// message back for redelivery. Close drains the running handlers.
func ExampleClient_NewPushConsumer() {
	cfg := client.DefaultConfig()
	cfg.Proxies = map[string]string{"idc-a": "proxy.idc-a.example:8081", "idc-b": "proxy.idc-b.example:8081"}
	cfg.App = "billing"
	c, err := client.New(context.Background(), cfg) // finds its IDC: DUOMQ_IDC, /etc/logicIdc, IP
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	consumer, err := c.NewPushConsumer("billing", "orders", "paid || refunded",
		func(ctx context.Context, m *client.MessageView) error {
			log.Printf("order event %s: %s (delivery %d)", m.Tag, m.Body, m.ReconsumeTimes+1)
			return nil
		}, 8)
	if err != nil {
		log.Fatal(err)
	}
	interrupt, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	<-interrupt.Done()
	consumer.Close()
}
