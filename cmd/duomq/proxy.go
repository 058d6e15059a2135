package main

import (
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/logging"
)

func newProxyCommand() *cobra.Command {
	var file, readyFile string
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run a proxy (the gRPC front door of a DC for application clients)",
		Long: `Run one proxy. Configuration comes from --config FILE (YAML, JSON or TOML; keys
under proxy.: dc, listen, etcd-endpoints, nameservers {dc: [addr]}, limits,
throttle, breaker, auth, tls), then DUOMQ_* environment variables
(DUOMQ_PROXY_DC=idc-b sets proxy.dc), then the flags below.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc := daemon.DefaultProxyProcess()
			err := loadConfig(file, cmd.Flags(), map[string]string{
				"listen": "proxy.listen", "metrics-listen": "proxy.metrics-listen", "dc": "proxy.dc",
				"etcd": "proxy.etcd-endpoints", "id": "proxy.id",
			}, &pc)
			if err != nil {
				return err
			}
			if f := cmd.Flags().Lookup("nameservers"); f.Changed {
				ns, _ := cmd.Flags().GetStringToString("nameservers")
				pc.Proxy.Nameservers = map[string][]string{}
				for dc, addrs := range ns {
					pc.Proxy.Nameservers[dc] = strings.Split(addrs, "+")
				}
			}
			logger, err := logging.New(pc.Log, os.Stderr)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return daemon.RunProxy(ctx, pc, daemon.ProxyMeta{}, daemon.Deps{Logger: logger, ProcessMetrics: true, Ready: readyWriter(readyFile, logger)})
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "configuration file")
	f.StringVar(&readyFile, "ready-file", "", "write the bound addresses as JSON here once serving")
	f.String("listen", "", "gRPC listen address (host:port, port 0 picks one)")
	f.String("metrics-listen", "", "HTTP /metrics listen address")
	f.String("dc", "", "data center served")
	f.String("id", "", "proxy id in the consumer presence keys (default: dc and a random suffix)")
	f.StringSlice("etcd", nil, "etcd endpoints of the metadata service (comma-separated)")
	f.StringToString("nameservers", nil, "nameservers of each DC: idc-a=HOST:PORT,idc-b=HOST:PORT (several per DC joined with +)")
	return cmd
}
