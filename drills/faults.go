package drills

import (
	"context"
	"time"

	"github.com/duomq/duomq/internal/clusterfile"
)

// Faults injects and undoes the real faults of a drill on one kind of
// topology. The runner picks the driver from the cluster file: the dev API
// of a `duomq dev` topology (processes and network namespaces), or Docker
// when the cluster file names a Compose project (containers and Docker
// networks).
//
// Every method returns once the fault is in place (or undone), and a short
// human-readable detail for the report (the pid killed, the rule added).
// Undo methods are idempotent: undoing a fault not in place is not an error.
type Faults interface {
	// KillSite kills every process of a site at once (SIGKILL).
	KillSite(ctx context.Context, site string) (string, error)
	// RestartSite starts a killed site again and returns when it is ready.
	RestartSite(ctx context.Context, site string) (string, error)
	// KillComponent kills one component of a site (SIGKILL): "controller",
	// "replicator", "core" (the local topology: the core process holds
	// the etcd member, nameserver, brokers and proxy) or, with standbys, a
	// broker by name; or a container name of a Compose site.
	KillComponent(ctx context.Context, site, component string) (string, error)
	// RestartComponent starts a killed component again.
	RestartComponent(ctx context.Context, site, component string) (string, error)
	// PauseComponent stops a component (SIGSTOP); ResumeComponent
	// continues it (SIGCONT).
	PauseComponent(ctx context.Context, site, component string) (string, error)
	ResumeComponent(ctx context.Context, site, component string) (string, error)
	// Partition cuts site from the sites in from (all others when empty),
	// in both directions. Heal removes every cut of site.
	Partition(ctx context.Context, site string, from []string) (string, error)
	Heal(ctx context.Context, site string) (string, error)
	// WANLatency adds delay to the round trip between two sites (zero
	// removes it).
	WANLatency(ctx context.Context, a, b string, delay time.Duration) (string, error)
	// Reload returns the cluster file as it is now (pids change when
	// sites restart).
	Reload() (clusterfile.File, error)
}
