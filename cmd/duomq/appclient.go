package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/client"
	"github.com/duomq/duomq/internal/clusterfile"
)

// proxyFlags choose the proxy of the application-client commands (produce,
// consume, clients, dlq): --proxy ADDR, or the --dc site of the cluster file.
type proxyFlags struct {
	proxy     string
	dc        string
	app       string
	accessKey string
	secretKey string
}

func (p *proxyFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&p.proxy, "proxy", "", "proxy address (host:port), instead of --cluster and --dc")
	f.StringVar(&p.dc, "dc", "", "DC whose proxy to use, from the cluster file (default $DUOMQ_IDC)")
	f.StringVar(&p.app, "app", "duomq-cli", "application name announced to the proxy")
	f.StringVar(&p.accessKey, "access-key", "", "access key signing the calls (default $DUOMQ_ACCESS_KEY)")
	f.StringVar(&p.secretKey, "secret-key", "", "secret of the access key (default $DUOMQ_SECRET_KEY)")
}

// proxySite is one proxy to talk to and the DC it serves ("" when only an
// address was given).
type proxySite struct {
	dc, addr string
}

// one picks the single proxy of produce and consume.
func (p *proxyFlags) one(g *globalFlags) (proxySite, error) {
	if p.proxy != "" {
		return proxySite{dc: p.dc, addr: p.proxy}, nil
	}
	f, err := g.clusterFile()
	if err != nil {
		return proxySite{}, fmt.Errorf("%w (or give --proxy ADDR)", err)
	}
	dc := p.dc
	if dc == "" {
		dc = os.Getenv(client.EnvIDC)
	}
	if dc == "" {
		return proxySite{}, fmt.Errorf("--dc is required with a cluster file (DCs with a proxy: %s)", strings.Join(proxyDCs(f), ", "))
	}
	return siteProxy(f, dc)
}

// all lists the proxies of admin commands: --proxy, the --dc site, or
// every site of the cluster file that has a proxy.
func (p *proxyFlags) all(g *globalFlags) ([]proxySite, error) {
	if p.proxy != "" || p.dc != "" {
		s, err := p.one(g)
		return []proxySite{s}, err
	}
	f, err := g.clusterFile()
	if err != nil {
		return nil, fmt.Errorf("%w (or give --proxy ADDR)", err)
	}
	var out []proxySite
	for _, dc := range proxyDCs(f) {
		out = append(out, proxySite{dc: dc, addr: f.Sites[dc].Proxy})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no site of the cluster file has a proxy")
	}
	return out, nil
}

func siteProxy(f clusterfile.File, dc string) (proxySite, error) {
	s, err := f.Site(dc)
	if err != nil {
		return proxySite{}, err
	}
	if s.Proxy == "" {
		return proxySite{}, fmt.Errorf("site %q has no proxy in the cluster file (DCs with a proxy: %s)", dc, strings.Join(proxyDCs(f), ", "))
	}
	return proxySite{dc: dc, addr: s.Proxy}, nil
}

func proxyDCs(f clusterfile.File) []string {
	var out []string
	for _, n := range f.SiteNames() {
		if f.Sites[n].Proxy != "" {
			out = append(out, n)
		}
	}
	return out
}

// connect opens an SDK client to one proxy. The IDC is the site's (or,
// with a bare --proxy, the proxy's own DC): the command line never reads
// the host's logicIdc file.
func (p *proxyFlags) connect(ctx context.Context, g *globalFlags, site proxySite, tune ...func(*client.Config)) (*client.Client, error) {
	cfg := client.DefaultConfig()
	cfg.Proxy = site.addr
	cfg.App = p.app
	cfg.AccessKey = firstNonEmpty(p.accessKey, os.Getenv("DUOMQ_ACCESS_KEY"))
	cfg.SecretKey = firstNonEmpty(p.secretKey, os.Getenv("DUOMQ_SECRET_KEY"))
	cfg.IDC.Sources = []string{client.SourceDefault}
	cfg.IDC.Default = site.dc
	if g.timeout > 0 {
		cfg.RequestTimeout = g.timeout
	}
	for _, t := range tune {
		t(&cfg)
	}
	return client.New(ctx, cfg)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
