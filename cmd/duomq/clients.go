package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/client"
)

func newClientsCommand(g *globalFlags) *cobra.Command {
	var pf proxyFlags
	cmd := &cobra.Command{
		Use:   "clients [--cluster FILE | --proxy ADDR] [--dc DC]",
		Short: "List the application clients heartbeating the proxies, with their IDC and SDK version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sites, err := pf.all(g)
			if err != nil {
				return err
			}
			var all []client.ClientStatus
			err = eachProxy(cmd, g, &pf, sites, func(ctx context.Context, c *client.Client, site proxySite) error {
				cs, err := c.ListClients(ctx)
				all = append(all, cs...)
				return err
			})
			if err != nil {
				return err
			}
			sort.Slice(all, func(i, j int) bool {
				if all[i].ProxyDC != all[j].ProxyDC {
					return all[i].ProxyDC < all[j].ProxyDC
				}
				return all[i].ClientID < all[j].ClientID
			})
			rows := make([][]string, 0, len(all))
			for _, s := range all {
				rows = append(rows, []string{dash(s.ProxyDC), s.ClientID, dash(s.App), dash(s.IDC), dash(s.IDCSource), dash(s.SDKVersion),
					dash(s.Host), dash(strings.Join(s.ProducerTopics, ",")), dash(strings.Join(s.ConsumerGroups, ",")), age(s.LastHeartbeat)})
			}
			header := []string{"PROXY-DC", "CLIENT-ID", "APP", "IDC", "IDC-SOURCE", "SDK", "HOST", "PRODUCES", "CONSUMES", "LAST-HEARTBEAT"}
			if all == nil {
				all = []client.ClientStatus{}
			}
			return g.print(cmd.OutOrStdout(), all, header, rows)
		},
	}
	pf.register(cmd)
	return cmd
}

// eachProxy runs fn against every site's proxy. A proxy that fails is
// reported on stderr and the others still answer; the error says how many
// failed, and is nil when all answered.
func eachProxy(cmd *cobra.Command, g *globalFlags, pf *proxyFlags, sites []proxySite,
	fn func(ctx context.Context, c *client.Client, site proxySite) error) error {
	failed := 0
	for _, site := range sites {
		err := func() error {
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			c, err := pf.connect(ctx, g, site)
			if err != nil {
				return err
			}
			defer c.Close()
			return fn(ctx, c, site)
		}()
		if err != nil {
			failed++
			fmt.Fprintf(cmd.ErrOrStderr(), "duomq: proxy %s (%s): %v\n", dash(site.dc), site.addr, err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d proxies failed", failed, len(sites))
	}
	return nil
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Truncate(100*time.Millisecond).String() + " ago"
}
