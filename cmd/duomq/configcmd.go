package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/duomq/duomq/dr/meta/member"
	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/logging"
)

// configKinds are the kinds `duomq config validate` knows, in the order
// they are inferred; each is named after the top-level key of its section.
var configKinds = []string{"broker", "nameserver", "proxy", "replicator", "controller", "member"}

// configProcess returns the process struct of a kind, holding its defaults,
// and the component checks to run once a file is loaded into it.
func configProcess(kind string) (any, func() map[string]error) {
	checkLog := func(c logging.Config) error { _, err := logging.New(c, io.Discard); return err }
	switch kind {
	case "broker":
		pc := daemon.DefaultBrokerProcess()
		return &pc, func() map[string]error {
			return map[string]error{"broker": pc.Broker.Validate(), "log": checkLog(pc.Log)}
		}
	case "nameserver":
		pc := daemon.DefaultNameserverProcess()
		return &pc, func() map[string]error {
			return map[string]error{"nameserver": pc.Nameserver.Validate(), "log": checkLog(pc.Log)}
		}
	case "proxy":
		pc := daemon.DefaultProxyProcess()
		return &pc, func() map[string]error {
			return map[string]error{"proxy": pc.Proxy.Validate(), "log": checkLog(pc.Log)}
		}
	case "replicator":
		pc := daemon.DefaultReplicatorProcess()
		return &pc, func() map[string]error {
			return map[string]error{"replicator": pc.Replicator.Validate(), "log": checkLog(pc.Log)}
		}
	case "controller":
		pc := daemon.DefaultControllerProcess()
		return &pc, func() map[string]error {
			return map[string]error{"controller": pc.Validate(), "log": checkLog(pc.Log)}
		}
	case "meta":
		pc := metaProcess{Member: member.DefaultConfig(), Log: logging.DefaultConfig()}
		return &pc, func() map[string]error {
			return map[string]error{"member": pc.Member.Validate(), "log": checkLog(pc.Log)}
		}
	}
	return nil, nil
}

// readConfigFile parses file alone (no defaults, environment or flags).
func readConfigFile(file string) (*viper.Viper, error) {
	v := viper.New()
	v.SetConfigFile(file)
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return v, nil
}

// inferConfigKind names the kind of file from its top-level keys.
func inferConfigKind(file string) (string, error) {
	v, err := readConfigFile(file)
	if err != nil {
		return "", err
	}
	var found []string
	for _, k := range configKinds {
		if v.InConfig(k) {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("cannot infer the kind from top-level keys (found %v): use --kind", found)
	}
	if found[0] == "member" {
		return "meta", nil
	}
	return found[0], nil
}

// Reports of mapstructure: the unknown keys of one section, and a bad value.
var (
	invalidKeys = regexp.MustCompile(`^'([^']*)' has invalid keys: (.*)$`)
	badValue    = regexp.MustCompile(`^'([^']*)' (.*)$`)
)

// validateConfig loads file the way the command of kind loads it and
// returns every problem found, one a line, each naming its key where the
// loader or the component does.
func validateConfig(file, kind string) []string {
	pc, checks := configProcess(kind)
	if pc == nil {
		return []string{fmt.Sprintf("unknown kind %q: use broker, nameserver, proxy, replicator, controller or meta", kind)}
	}
	if _, err := readConfigFile(file); err != nil {
		return []string{err.Error()}
	}
	var problems []string
	if err := loadConfig(file, pflag.NewFlagSet("validate", pflag.ContinueOnError), nil, pc); err != nil {
		root := reflect.TypeOf(pc).Elem().String() // mapstructure's name of the top level
		for _, e := range leafErrors(err) {
			msg := strings.TrimPrefix(e.Error(), "config "+file+": ")
			if m := invalidKeys.FindStringSubmatch(msg); m != nil {
				section := strings.TrimPrefix(m[1], root)
				for _, k := range strings.Split(m[2], ", ") {
					problems = append(problems, strings.TrimPrefix(section+"."+k, ".")+": unknown key")
				}
			} else {
				problems = append(problems, badValue.ReplaceAllString(msg, "$1: $2"))
			}
		}
	}
	// Values that failed to decode keep their defaults, so the component
	// checks still judge the rest.
	errs := checks()
	for _, section := range slices.Sorted(maps.Keys(errs)) {
		if errs[section] != nil {
			problems = append(problems, section+": "+errs[section].Error())
		}
	}
	return problems
}

// leafErrors flattens joined errors (mapstructure reports each bad key
// separately).
func leafErrors(err error) []error {
	var j interface{ Unwrap() []error }
	if !errors.As(err, &j) {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, leafErrors(e)...)
	}
	return out
}

func newConfigCommand() *cobra.Command {
	var kind string
	validate := &cobra.Command{
		Use:   "validate [--kind broker|nameserver|proxy|replicator|controller|meta] FILE",
		Short: "Check a configuration file: unknown keys, wrong types and invalid values, all at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, out := args[0], cmd.OutOrStdout()
			if kind == "" {
				k, err := inferConfigKind(file)
				if err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				kind = k
				fmt.Fprintf(out, "%s: kind %s (inferred from its top-level keys)\n", file, kind)
			}
			problems := validateConfig(file, kind)
			for _, p := range problems {
				fmt.Fprintf(out, "%s: %s\n", file, p)
			}
			if len(problems) > 0 {
				return fmt.Errorf("%s: %d problem(s) in the %s configuration", file, len(problems), kind)
			}
			fmt.Fprintf(out, "%s: ok (%s)\n", file, kind)
			return nil
		},
	}
	validate.Flags().StringVar(&kind, "kind", "", "broker, nameserver, proxy, replicator, controller or meta (default: inferred from the top-level keys)")
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	cmd.AddCommand(validate)
	return cmd
}
