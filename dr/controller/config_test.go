package controller_test

import (
	"errors"
	"testing"
	"time"

	"github.com/duomq/duomq/dr/controller"
)

func TestControllerConfigValidate(t *testing.T) {
	if err := controller.DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*controller.Config)
	}{
		{"election ttl below a second", func(c *controller.Config) { c.ElectionTTL = 500 * time.Millisecond }},
		{"election ttl not whole seconds", func(c *controller.Config) { c.ElectionTTL = 1500 * time.Millisecond }},
		{"down-after zero", func(c *controller.Config) { c.DownAfter = 0 }},
		{"lease-ttl negative", func(c *controller.Config) { c.LeaseTTL = -time.Second }},
		{"catch-up zero", func(c *controller.Config) { c.CatchUpTimeout = 0 }},
		{"poll longer than catch-up", func(c *controller.Config) { c.PollInterval = time.Minute }},
		{"fence timeout zero", func(c *controller.Config) { c.FenceTimeout = 0 }},
		{"max-parallel zero", func(c *controller.Config) { c.MaxParallel = 0 }},
		{"audit-keep zero", func(c *controller.Config) { c.AuditKeep = 0 }},
		{"api-url without scheme", func(c *controller.Config) { c.APIURL = "127.0.0.1:9390" }},
		{"api-url ftp", func(c *controller.Config) { c.APIURL = "ftp://h:1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := controller.DefaultConfig()
			tt.mod(&cfg)
			if err := cfg.Validate(); !errors.Is(err, controller.ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			if _, err := controller.New(cfg, controller.Deps{}); !errors.Is(err, controller.ErrInvalidConfig) {
				t.Fatalf("New() = %v, want ErrInvalidConfig", err)
			}
		})
	}
}
