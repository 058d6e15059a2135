package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/dr/meta/member"
	"github.com/duomq/duomq/internal/logging"
)

// metaProcess is the configuration file of `duomq meta`.
type metaProcess struct {
	Member member.Config  `mapstructure:"member"`
	Log    logging.Config `mapstructure:"log"`
}

func newMetaCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "meta --config FILE",
		Short: "Run one etcd member of the global metadata service (one per site: idc-a, idc-b, witness)",
		Long: `Run one member of the metadata service's etcd cluster. The file names the member
(member.name), its URLs, the initial cluster (member.initial-cluster: name -> peer URL
of all three members) and optional client/peer TLS. See docs/configuration.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc := metaProcess{Member: member.DefaultConfig(), Log: logging.DefaultConfig()}
			if err := loadConfig(file, cmd.Flags(), nil, &pc); err != nil {
				return err
			}
			logger, err := logging.New(pc.Log, os.Stderr)
			if err != nil {
				return err
			}
			logger = logging.Component(logger, "meta", pc.Member.Name) // a member is named after its site
			pc.Member.Logger = logger
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			m, err := member.Start(ctx, pc.Member)
			if err != nil {
				return err
			}
			defer m.Close()
			logger.Info("metadata member serving", "member", m.Name(), "client-url", m.ClientURL(), "peer-url", m.PeerURL())
			select {
			case <-ctx.Done():
				return nil
			case err := <-m.Err():
				return err
			}
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "configuration file")
	cmd.MarkFlagRequired("config")
	return cmd
}
