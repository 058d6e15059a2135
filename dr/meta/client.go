package meta

import (
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ClientConfig is the etcd client configuration every duomq component
// uses. Keepalive probes matter across DCs: a member behind a cut link
// drops packets silently, and without probes the client would keep
// sending a share of its requests (and perhaps its lease keepalive
// stream) over the dead connection until each times out; with a probe
// every second, answered within one, the connection is declared dead
// within about two seconds, inside the controller's election TTL, and
// requests go to the members that answer. The members accept pings that
// often (member.Config sets etcd's keepalive minimum time).
func ClientConfig(endpoints []string) clientv3.Config {
	return clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: time.Second,
		Logger:               zap.NewNop(),
	}
}

// NewClient connects to the metadata service with ClientConfig.
func NewClient(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(ClientConfig(endpoints))
}
