package main

import (
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"

	"github.com/duomq/duomq/internal/daemon"
)

// TestDeployExamplesLoadAndValidate loads every example configuration the
// way its command does (unknown keys are errors) and validates it.
func TestDeployExamplesLoadAndValidate(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "examples")
	t.Run("broker", func(t *testing.T) {
		pc := daemon.DefaultBrokerProcess()
		if err := loadConfig(filepath.Join(dir, "broker.yaml"), pflag.NewFlagSet("x", pflag.ContinueOnError), nil, &pc); err != nil {
			t.Fatal(err)
		}
		if err := pc.Broker.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("proxy", func(t *testing.T) {
		pc := daemon.DefaultProxyProcess()
		if err := loadConfig(filepath.Join(dir, "proxy.yaml"), pflag.NewFlagSet("x", pflag.ContinueOnError), nil, &pc); err != nil {
			t.Fatal(err)
		}
		if err := pc.Proxy.Validate(); err != nil {
			t.Fatal(err)
		}
		if !pc.Proxy.Auth.Enabled || len(pc.Proxy.Auth.Apps) == 0 {
			t.Fatal("the deployment example must turn authentication on")
		}
	})
}
