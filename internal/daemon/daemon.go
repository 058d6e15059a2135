package daemon

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/duomq/duomq/internal/logging"
)

// Endpoints are the addresses a component bound.
type Endpoints struct {
	GRPC    string `json:"grpc"`
	Metrics string `json:"metrics"`
	// HTTP is the URL of an HTTP API (the controller's).
	HTTP string `json:"http,omitempty"`
}

// Deps are what the caller shares with a component.
type Deps struct {
	Logger *slog.Logger
	// ProcessMetrics adds Go runtime and process collectors to the
	// component's registry (once per process).
	ProcessMetrics bool
	// Ready is called once the component serves.
	Ready func(Endpoints)
}

func (d Deps) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// componentLogger is a daemon's logger: every line names the component
// and the site (the DC served; when empty, the caller's logger names it,
// as a site runner does).
func (d Deps) componentLogger(component, site string) *slog.Logger {
	return logging.Component(d.logger(), component, site)
}

func (d Deps) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	if d.ProcessMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return reg
}

func (d Deps) ready(e Endpoints) {
	if d.Ready != nil {
		d.Ready(e)
	}
}

// listen2 binds the gRPC and metrics listeners.
func listen2(grpcAddr, metricsAddr string) (net.Listener, net.Listener, error) {
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", grpcAddr, err)
	}
	ml, err := net.Listen("tcp", metricsAddr)
	if err != nil {
		gl.Close()
		return nil, nil, fmt.Errorf("metrics listen %s: %w", metricsAddr, err)
	}
	return gl, ml, nil
}

func endpoints(gl, ml net.Listener) Endpoints {
	return Endpoints{GRPC: gl.Addr().String(), Metrics: "http://" + ml.Addr().String() + "/metrics"}
}
