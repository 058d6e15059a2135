package broker

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidatePopAndDelayKeys(t *testing.T) {
	tests := []struct {
		key    string
		mutate func(*Config)
	}{
		{"retry-backoff", func(c *Config) { c.RetryBackoff = nil }},
		{"retry-backoff", func(c *Config) { c.RetryBackoff = []time.Duration{time.Second, 0} }},
		{"pop-revive-interval", func(c *Config) { c.PopReviveInterval = 0 }},
		{"idempotency-cache-size", func(c *Config) { c.IdempotencyCacheSize = -1 }},
		{"idempotency-window", func(c *Config) { c.IdempotencyWindow = -time.Second }},
		{"max-delay", func(c *Config) { c.MaxDelay = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("err = %v, want one naming %s", err, tt.key)
			}
		})
	}
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
}
