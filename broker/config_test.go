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

func TestConfigValidateISRTimeout(t *testing.T) {
	for _, tt := range []struct {
		isr, replica time.Duration
		ok           bool
	}{
		{2 * time.Second, 5 * time.Second, true},
		{0, 5 * time.Second, false},
		{5 * time.Second, 5 * time.Second, false},
		{6 * time.Second, 5 * time.Second, false},
	} {
		c := DefaultConfig()
		c.ISRTimeout, c.ReplicaTimeout = tt.isr, tt.replica
		err := c.Validate()
		if tt.ok != (err == nil) || (err != nil && (!errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "isr-timeout"))) {
			t.Errorf("isr-timeout %v, replica-timeout %v: %v", tt.isr, tt.replica, err)
		}
	}
}
