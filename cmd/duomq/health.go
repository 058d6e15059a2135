package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newHealthCommand is the health probe of container images: they have no
// shell or curl, so HEALTHCHECK runs the binary itself.
func newHealthCommand() *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health [--url URL]",
		Short: "Probe a component's HTTP endpoint; exit 0 on a 2xx answer, 1 otherwise",
		Long: `GET URL (a component's /healthz, an etcd member's /health) and exit 0 when it
answers 2xx within --timeout. Container health checks run it, as the images
hold nothing but the duomq binary; without --url it probes $DUOMQ_HEALTH_URL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				return errors.New("health: no URL: give --url or set DUOMQ_HEALTH_URL")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := probe(ctx, url); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", os.Getenv("DUOMQ_HEALTH_URL"), "URL to GET, e.g. http://127.0.0.1:10912/healthz (default $DUOMQ_HEALTH_URL)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "deadline of the request")
	return cmd
}

// probe GETs url and fails unless it answers 2xx.
func probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// Direct, not through $HTTP_PROXY: the endpoint is a local one.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return errors.New(resp.Status + ": " + strings.TrimSpace(string(body)))
	}
	return nil
}
