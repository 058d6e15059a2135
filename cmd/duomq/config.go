package main

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// loadConfig fills out (a pointer to a struct already holding defaults) from,
// in increasing precedence: the defaults, the file (if any), DUOMQ_*
// environment variables (DUOMQ_BROKER_DATA_DIR for broker.data-dir) and the
// flags given on the command line (flag name = key). Unknown keys in the
// file are an error naming them.
func loadConfig(file string, flags *pflag.FlagSet, flagKeys map[string]string, out any) error {
	v := viper.New()
	v.SetEnvPrefix("DUOMQ")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	setDefaults(v, "", reflect.ValueOf(out).Elem())
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("read config %s: %w", file, err)
		}
	}
	for flag, key := range flagKeys {
		if f := flags.Lookup(flag); f != nil && f.Changed {
			if err := v.BindPFlag(key, f); err != nil {
				return err
			}
		}
	}
	err := v.Unmarshal(out, func(c *mapstructure.DecoderConfig) {
		c.ErrorUnused = true
		c.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(","))
	})
	if err != nil {
		return fmt.Errorf("config %s: %w", file, err)
	}
	return nil
}

// setDefaults registers every leaf key of a struct (by its mapstructure
// tag) with its current value, so that environment variables reach every
// key and Unmarshal knows the whole tree.
func setDefaults(v *viper.Viper, prefix string, s reflect.Value) {
	t := s.Type()
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("mapstructure"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		f := s.Field(i)
		if f.Kind() == reflect.Struct && f.Type() != reflect.TypeOf(time.Time{}) {
			setDefaults(v, key+".", f)
			continue
		}
		v.SetDefault(key, f.Interface())
	}
}
