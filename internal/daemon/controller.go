package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/dr/statuspage"
	"github.com/duomq/duomq/internal/logging"
	"github.com/duomq/duomq/internal/serve"
)

// ControllerTLS secures the controller API's listener; the zero value is
// plain HTTP.
type ControllerTLS struct {
	CertFile string `mapstructure:"cert-file" json:"cert-file"`
	KeyFile  string `mapstructure:"key-file" json:"key-file"`
}

// Enabled reports whether the API serves HTTPS.
func (t ControllerTLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// ControllerProcess is the configuration of one controller candidate (the
// file of `duomq controller --config`).
type ControllerProcess struct {
	// Listen is the address of the HTTP/JSON API.
	Listen        string `mapstructure:"listen" json:"listen"`
	MetricsListen string `mapstructure:"metrics-listen" json:"metrics-listen"`
	// Token is the bearer token every API request must present; TokenFile
	// names a file holding it instead (its surrounding space trimmed).
	Token     string        `mapstructure:"token" json:"token"`
	TokenFile string        `mapstructure:"token-file" json:"token-file"`
	TLS       ControllerTLS `mapstructure:"tls" json:"tls"`
	// Etcd are the metadata service's client URLs (when the process has
	// no store of its own).
	Etcd       []string          `mapstructure:"etcd-endpoints" json:"etcd-endpoints"`
	Controller controller.Config `mapstructure:"controller" json:"controller"`
	Log        logging.Config    `mapstructure:"log" json:"log"`
}

// DefaultControllerProcess returns the defaults of `duomq controller`.
func DefaultControllerProcess() ControllerProcess {
	return ControllerProcess{
		Listen: "127.0.0.1:9390", MetricsListen: "127.0.0.1:9391", Etcd: []string{"http://127.0.0.1:2379"},
		Controller: controller.DefaultConfig(), Log: logging.DefaultConfig(),
	}
}

// Validate checks the process configuration and the controller's.
func (pc ControllerProcess) Validate() error {
	if pc.Token == "" && pc.TokenFile == "" {
		return fmt.Errorf("controller: token (or token-file) is empty: every API request needs it: %w", controller.ErrInvalidConfig)
	}
	if pc.Token != "" && pc.TokenFile != "" {
		return fmt.Errorf("controller: give token or token-file, not both: %w", controller.ErrInvalidConfig)
	}
	if (pc.TLS.CertFile == "") != (pc.TLS.KeyFile == "") {
		return fmt.Errorf("controller: tls.cert-file and tls.key-file go together: %w", controller.ErrInvalidConfig)
	}
	return pc.Controller.Validate()
}

// token returns the configured token.
func (pc ControllerProcess) token() (string, error) {
	if pc.TokenFile == "" {
		return pc.Token, nil
	}
	b, err := os.ReadFile(pc.TokenFile)
	if err != nil {
		return "", fmt.Errorf("controller token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("controller token-file %s is empty: %w", pc.TokenFile, controller.ErrInvalidConfig)
	}
	return tok, nil
}

// controllerHandler serves the status page under /ui/ (GET / redirects
// there) without a token, and everything else through the API, which
// checks the token.
func controllerHandler(api http.Handler) http.Handler {
	page := statuspage.Handler()
	mux := http.NewServeMux()
	mux.Handle(statuspage.Prefix, page)
	mux.Handle("GET /{$}", page)
	mux.Handle("/", api)
	return mux
}

// RunController serves a controller candidate until ctx ends: its API and
// its status page (/ui/) on Listen (HTTPS with TLS files), /metrics on
// MetricsListen. store, when not nil, is the metadata store to use; else
// RunController connects to the configured etcd endpoints. Ready reports
// the API URL (HTTP) once the candidate takes part in the election.
func RunController(ctx context.Context, pc ControllerProcess, store *meta.Store, d Deps) error {
	logger := d.componentLogger("controller", pc.Controller.Site)
	reg := d.registry()
	if err := pc.Validate(); err != nil {
		return err
	}
	token, err := pc.token()
	if err != nil {
		return err
	}
	if store == nil && len(pc.Etcd) == 0 {
		return fmt.Errorf("controller: etcd-endpoints is empty: the controller needs the metadata service: %w", controller.ErrInvalidConfig)
	}
	store, closeStore, err := openStore(store, pc.Etcd, "controller", logger)
	if err != nil {
		return err
	}
	defer closeStore()
	var tlsCfg *tls.Config
	if pc.TLS.Enabled() {
		cert, err := tls.LoadX509KeyPair(pc.TLS.CertFile, pc.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("controller tls: load %s and %s: %w", pc.TLS.CertFile, pc.TLS.KeyFile, err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	hl, ml, err := listen2(pc.Listen, pc.MetricsListen)
	if err != nil {
		return err
	}
	scheme := "http://"
	if tlsCfg != nil {
		hl = tls.NewListener(hl, tlsCfg)
		scheme = "https://"
	}
	cfg := pc.Controller
	url := scheme + hl.Addr().String()
	if cfg.APIURL == "" {
		cfg.APIURL = url
	}
	brokers := controller.NewGRPCBrokers()
	defer brokers.Close()
	c, err := controller.New(cfg, controller.Deps{Store: store, Brokers: brokers, Logger: logger, Registerer: reg})
	if err != nil {
		hl.Close()
		ml.Close()
		return err
	}
	defer c.Close()
	api, err := controller.NewAPI(c, token)
	if err != nil {
		hl.Close()
		ml.Close()
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve.HTTP(gctx, hl, controllerHandler(api), 5*time.Second) })
	g.Go(func() error { return serve.Metrics(gctx, ml, reg) })
	g.Go(func() error { return c.Run(gctx) })
	g.Go(func() error {
		select {
		case <-c.Ready():
		case <-gctx.Done():
			return nil
		}
		ep := Endpoints{HTTP: url, Metrics: "http://" + ml.Addr().String() + "/metrics"}
		d.ready(ep)
		logger.Info("controller serving", "id", c.ID(), "api", ep.HTTP, "api-url", cfg.APIURL, "metrics", ep.Metrics, "tls", tlsCfg != nil)
		return nil
	})
	return g.Wait()
}
