package client

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
)

// idcProbe is what IDC detection reads from the world; tests replace it.
type idcProbe struct {
	getenv     func(string) string
	readFile   func(string) ([]byte, error)
	localAddrs func() ([]string, error)
	// resolve asks a proxy which DC's CIDRs contain one of addrs; "" when
	// none does.
	resolve func(ctx context.Context, addrs []string) (string, error)
}

// detectIDC tries cfg.Sources in order and returns the first IDC found with
// its source, or two empty strings.
func detectIDC(ctx context.Context, cfg IDCConfig, p idcProbe, log *slog.Logger) (idc, source string) {
	for _, src := range cfg.Sources {
		name, err := p.lookup(ctx, cfg, src)
		if err != nil {
			log.Debug("IDC source gave nothing", "source", src, "err", err)
			continue
		}
		if name != "" {
			return name, src
		}
	}
	return "", ""
}

func (p idcProbe) lookup(ctx context.Context, cfg IDCConfig, src string) (string, error) {
	switch src {
	case SourceEnv:
		return strings.TrimSpace(p.getenv(EnvIDC)), nil
	case SourceFile:
		if cfg.File == "" {
			return "", nil
		}
		b, err := p.readFile(cfg.File)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	case SourceIP:
		return p.byIP(ctx, cfg)
	case SourceDefault:
		return cfg.Default, nil
	}
	return "", fmt.Errorf("unknown IDC source %q", src)
}

func (p idcProbe) byIP(ctx context.Context, cfg IDCConfig) (string, error) {
	if p.resolve == nil {
		return "", nil
	}
	addrs, err := p.localAddrs()
	if err != nil {
		return "", err
	}
	addrs = append(addrs, cfg.ExtraAddresses...)
	if len(addrs) == 0 {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.LookupTimeout)
	defer cancel()
	return p.resolve(ctx, addrs)
}

// hostAddrs lists the host's non-loopback, non-link-local IP addresses.
func hostAddrs() ([]string, error) {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range ifaddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip := ipn.IP
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() {
			continue
		}
		out = append(out, ip.String())
	}
	return out, nil
}

// systemProbe reads the real environment, file system and interfaces.
func systemProbe(resolve func(ctx context.Context, addrs []string) (string, error)) idcProbe {
	return idcProbe{getenv: os.Getenv, readFile: os.ReadFile, localAddrs: hostAddrs, resolve: resolve}
}
