package client

import (
	"context"
	"time"

	"github.com/duomq/duomq/api/proxypb"
)

// ClientStatus is a client as a proxy last heard of it.
type ClientStatus struct {
	ClientID       string    `json:"client_id"`
	App            string    `json:"app"`
	IDC            string    `json:"idc"`
	IDCSource      string    `json:"idc_source"`
	SDKVersion     string    `json:"sdk_version"`
	Host           string    `json:"host"`
	ProducerTopics []string  `json:"producer_topics"`
	ConsumerGroups []string  `json:"consumer_groups"`
	ProxyDC        string    `json:"proxy_dc"`
	LastHeartbeat  time.Time `json:"last_heartbeat"`
}

// ListClients lists the clients that heartbeat this client's proxy.
func (c *Client) ListClients(ctx context.Context) ([]ClientStatus, error) {
	var resp *proxypb.ListClientsResponse
	err := c.call(ctx, "list clients", c.cfg.RequestTimeout, func(ctx context.Context) error {
		var err error
		resp, err = c.api.ListClients(ctx, &proxypb.ListClientsRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]ClientStatus, 0, len(resp.GetClients()))
	for _, s := range resp.GetClients() {
		ci := s.GetClient()
		out = append(out, ClientStatus{
			ClientID: ci.GetClientId(), App: ci.GetApp(), IDC: ci.GetIdc(), IDCSource: ci.GetIdcSource(),
			SDKVersion: ci.GetSdkVersion(), Host: ci.GetHost(), ProducerTopics: ci.GetProducerTopics(),
			ConsumerGroups: ci.GetConsumerGroups(), ProxyDC: s.GetProxyDc(), LastHeartbeat: unixNano(s.GetLastHeartbeatUnixNano()),
		})
	}
	return out, nil
}

// ListDeadLetters reads up to maxMessages of group's dead letters in the
// proxy's DC (bodies decompressed where possible).
func (c *Client) ListDeadLetters(ctx context.Context, group string, maxMessages int) ([]*MessageView, error) {
	var resp *proxypb.ListDeadLettersResponse
	err := c.call(ctx, "list dead letters of "+group, c.cfg.RequestTimeout, func(ctx context.Context) error {
		var err error
		resp, err = c.api.ListDeadLetters(ctx, &proxypb.ListDeadLettersRequest{Group: group, MaxMessages: int32(maxMessages)})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]*MessageView, 0, len(resp.GetMessages()))
	for _, m := range resp.GetMessages() {
		v, err := viewFromPB(m)
		if err != nil {
			v.Body = m.GetBody() // listed as stored
		}
		out = append(out, v)
	}
	return out, nil
}

// RedriveDeadLetters sends group's dead letters with the given ids (every
// one in the proxy's DC when ids is empty) back to their topic, and says
// how many it sent.
func (c *Client) RedriveDeadLetters(ctx context.Context, group string, ids []string) (int, error) {
	var resp *proxypb.RedriveDeadLettersResponse
	// One attempt: a redrive that timed out may have happened.
	err := c.callOnce(ctx, "redrive dead letters of "+group, c.cfg.RequestTimeout, func(ctx context.Context) error {
		var err error
		resp, err = c.api.RedriveDeadLetters(ctx, &proxypb.RedriveDeadLettersRequest{Group: group, Ids: ids})
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(resp.GetRedriven()), nil
}
