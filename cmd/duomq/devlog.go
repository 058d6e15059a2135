package main

import (
	"os"

	"github.com/duomq/duomq/internal/logging"
)

// Environment variables of the log keys (log.format, log.level), as every
// server command reads them.
const (
	envLogFormat = "DUOMQ_LOG_FORMAT"
	envLogLevel  = "DUOMQ_LOG_LEVEL"
)

// devLogConfig is the log configuration of `duomq dev` and of the site
// processes it starts: the defaults, then DUOMQ_LOG_FORMAT and
// DUOMQ_LOG_LEVEL; the commands' flags override it.
func devLogConfig() logging.Config {
	c := logging.DefaultConfig()
	if v := os.Getenv(envLogFormat); v != "" {
		c.Format = v
	}
	if v := os.Getenv(envLogLevel); v != "" {
		c.Level = v
	}
	return c
}

// exportLogConfig passes c on to the processes started from now on (the
// site processes inherit the environment), so the whole topology logs
// one way.
func exportLogConfig(c logging.Config) error {
	if err := os.Setenv(envLogFormat, c.Format); err != nil {
		return err
	}
	return os.Setenv(envLogLevel, c.Level)
}
