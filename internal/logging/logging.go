// Package logging builds the *slog.Logger every duomq process uses: text or
// JSON, a level, and the fields that say where a line comes from.
//
// # Fields
//
//   - component: the daemon (broker, nameserver, proxy, replicator,
//     controller, meta), set by internal/daemon or the command that runs it.
//     Parts of a daemon name themselves with subsystem (commitlog, metasync).
//   - site: the DC (or witness) the process serves.
//   - trace_id: on lines logged with a *Context method under a context
//     carrying a trace id (WithTraceID): the caller's x-duomq-trace-id, or
//     the id of the message the line is about.
//
// A logger built by New keeps one value per key among the attributes added
// with With and those of the line: a later value replaces an earlier one in
// place, so a daemon and the package it runs may both name the component
// without the line carrying it twice (JSON objects with duplicate keys
// confuse log pipelines).
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Field names shared by every daemon's lines.
const (
	KeyComponent = "component"
	KeySite      = "site"
	KeyTraceID   = "trace_id"
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
		return slog.New(newHandler(slog.NewTextHandler(w, opts))), nil
	case "json":
		return slog.New(newHandler(slog.NewJSONHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("log format %q: use text or json", cfg.Format)
}

// Component returns l naming the daemon and, when site is not empty, the
// site of its lines.
func Component(l *slog.Logger, component, site string) *slog.Logger {
	if site == "" {
		return l.With(KeyComponent, component)
	}
	return l.With(KeyComponent, component, KeySite, site)
}
