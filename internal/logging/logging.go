// Package logging builds the *slog.Logger every duomq process uses: text or
// JSON, a level, and the component and site fields on every line.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Config selects the format and level.
type Config struct {
	// Format is "text" or "json".
	Format string `mapstructure:"format" json:"format"`
	// Level is debug, info, warn or error.
	Level string `mapstructure:"level" json:"level"`
}

// DefaultConfig logs text at info level.
func DefaultConfig() Config { return Config{Format: "text", Level: "info"} }

// New returns a logger writing to w.
func New(cfg Config, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(cfg.Level))); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", cfg.Level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch cfg.Format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: use text or json", cfg.Format)
}
