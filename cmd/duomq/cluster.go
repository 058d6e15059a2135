package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/clusterfile"
)

// globalFlags are shared by every client command.
type globalFlags struct {
	cluster string
	etcd    string
	output  string
	timeout time.Duration
}

func (g *globalFlags) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&g.cluster, "cluster", "", "cluster file (cluster.json); default $DUOMQ_CLUSTER")
	f.StringVar(&g.etcd, "etcd", "", "etcd endpoints of the metadata service (comma-separated), instead of --cluster")
	f.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	f.DurationVar(&g.timeout, "timeout", 10*time.Second, "deadline of each request")
}

// clusterFile finds the cluster file: --cluster, else $DUOMQ_CLUSTER.
func (g *globalFlags) clusterFile() (clusterfile.File, error) {
	path := g.cluster
	if path == "" {
		path = os.Getenv("DUOMQ_CLUSTER")
	}
	if path == "" {
		return clusterfile.File{}, fmt.Errorf("no cluster given: use --cluster FILE, --etcd ENDPOINTS or set DUOMQ_CLUSTER (duomq dev prints it)")
	}
	return clusterfile.Load(path)
}

// endpoints finds the metadata service the same way for every command:
// --cluster FILE, else --etcd ENDPOINTS, else $DUOMQ_CLUSTER.
func (g *globalFlags) endpoints() ([]string, error) {
	if g.cluster == "" && g.etcd != "" {
		return strings.Split(g.etcd, ","), nil
	}
	f, err := g.clusterFile()
	if err != nil {
		return nil, err
	}
	return f.EtcdEndpoints(), nil
}

// store opens the metadata store; close the returned client when done.
func (g *globalFlags) store() (*meta.Store, *clientv3.Client, error) {
	eps, err := g.endpoints()
	if err != nil {
		return nil, nil, err
	}
	cli, err := meta.NewClient(eps)
	if err != nil {
		return nil, nil, fmt.Errorf("metadata service %v: %w", eps, err)
	}
	return meta.New(cli, meta.Options{Timeout: g.timeout}), cli, nil
}

// withStore runs fn against the metadata store with a deadline.
func (g *globalFlags) withStore(cmd *cobra.Command, fn func(ctx context.Context, s *meta.Store) error) error {
	s, cli, err := g.store()
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
	defer cancel()
	return fn(ctx, s)
}

// print writes v as JSON, or as a table of header and rows.
func (g *globalFlags) print(w io.Writer, v any, header []string, rows [][]string) error {
	switch g.output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "table", "":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		return tw.Flush()
	}
	return fmt.Errorf("--output %q: use table or json", g.output)
}
