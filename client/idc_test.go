package client

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// fakeProbe is an environment with an optional variable, file and
// resolver answer.
type fakeProbe struct {
	env, file   string
	fileErr     error
	ipIDC       string
	resolveErr  error
	gotAddrs    []string
	resolveHits int
}

func (f *fakeProbe) probe() idcProbe {
	return idcProbe{
		getenv: func(k string) string {
			if k == EnvIDC {
				return f.env
			}
			return ""
		},
		readFile: func(string) ([]byte, error) {
			if f.fileErr != nil {
				return nil, f.fileErr
			}
			return []byte(f.file), nil
		},
		localAddrs: func() ([]string, error) { return []string{"10.1.2.3"}, nil },
		resolve: func(_ context.Context, addrs []string) (string, error) {
			f.resolveHits++
			f.gotAddrs = addrs
			return f.ipIDC, f.resolveErr
		},
	}
}

func TestDetectIDCOrder(t *testing.T) {
	all := []string{SourceEnv, SourceFile, SourceIP, SourceDefault}
	cases := []struct {
		name       string
		probe      fakeProbe
		sources    []string
		def        string
		wantIDC    string
		wantSource string
	}{
		{"env wins", fakeProbe{env: "idc-e", file: "idc-f", ipIDC: "idc-i"}, all, "idc-d", "idc-e", SourceEnv},
		{"file trimmed", fakeProbe{file: "  idc-f\n", ipIDC: "idc-i"}, all, "idc-d", "idc-f", SourceFile},
		{"blank env and file", fakeProbe{env: " ", file: "\n", ipIDC: "idc-i"}, all, "idc-d", "idc-i", SourceIP},
		{"missing file then ip", fakeProbe{fileErr: fs.ErrNotExist, ipIDC: "idc-i"}, all, "idc-d", "idc-i", SourceIP},
		{"ip no match then default", fakeProbe{fileErr: fs.ErrNotExist}, all, "idc-d", "idc-d", SourceDefault},
		{"resolver down then default", fakeProbe{fileErr: fs.ErrNotExist, resolveErr: errors.New("down")}, all, "idc-d", "idc-d", SourceDefault},
		{"nothing", fakeProbe{fileErr: fs.ErrNotExist}, all, "", "", ""},
		{"configured order", fakeProbe{env: "idc-e", ipIDC: "idc-i"}, []string{SourceIP, SourceEnv}, "", "idc-i", SourceIP},
		{"default only", fakeProbe{env: "idc-e", ipIDC: "idc-i"}, []string{SourceDefault}, "idc-d", "idc-d", SourceDefault},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := IDCConfig{Sources: tc.sources, File: "/logicIdc", Default: tc.def, LookupTimeout: time.Second}
			idc, src := detectIDC(context.Background(), cfg, tc.probe.probe(), slog.New(slog.DiscardHandler))
			if idc != tc.wantIDC || src != tc.wantSource {
				t.Fatalf("got %q from %q, want %q from %q", idc, src, tc.wantIDC, tc.wantSource)
			}
		})
	}
}

func TestDetectIDCSendsExtraAddresses(t *testing.T) {
	f := &fakeProbe{fileErr: fs.ErrNotExist, ipIDC: "idc-b"}
	cfg := IDCConfig{Sources: []string{SourceIP}, ExtraAddresses: []string{"192.0.2.7"}, LookupTimeout: time.Second}
	idc, src := detectIDC(context.Background(), cfg, f.probe(), slog.New(slog.DiscardHandler))
	if idc != "idc-b" || src != SourceIP {
		t.Fatalf("got %q/%q", idc, src)
	}
	if !slices.Equal(f.gotAddrs, []string{"10.1.2.3", "192.0.2.7"}) {
		t.Fatalf("resolver got %v, want host addresses then extra ones", f.gotAddrs)
	}
}

func TestDetectIDCSkipsLookupWhenEnvSet(t *testing.T) {
	f := &fakeProbe{env: "idc-a", ipIDC: "idc-b"}
	cfg := DefaultConfig().IDC
	if idc, _ := detectIDC(context.Background(), cfg, f.probe(), slog.New(slog.DiscardHandler)); idc != "idc-a" {
		t.Fatalf("idc %q", idc)
	}
	if f.resolveHits != 0 {
		t.Fatalf("the proxy was asked although the environment named the IDC")
	}
}

func TestHostAddrsExcludeLoopback(t *testing.T) {
	addrs, err := hostAddrs()
	if err != nil {
		t.Skip("no interfaces:", err)
	}
	for _, a := range addrs {
		if a == "127.0.0.1" || a == "::1" {
			t.Fatalf("loopback address %s listed", a)
		}
	}
}
